use serde_json::Value;

use crate::bindings::pushrail::destination::types::DestinationType;

/// A plugin's self-description, built with a small builder so that new fields get defaults.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    id: String,
    name: String,
    description: String,
    config_schema: Value,
    credential_schema: Option<Value>,
    credential_kinds: Vec<String>,
    credential_required: bool,
    max_batch_size: u32,
}

impl TypeInfo {
    pub fn new(id: &str, name: &str, description: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            config_schema: serde_json::json!({ "type": "object" }),
            credential_schema: None,
            credential_kinds: Vec::new(),
            credential_required: false,
            max_batch_size: 100,
        }
    }

    /// JSON Schema of the destination config; the embed UI renders its form from it.
    pub fn config_schema(mut self, schema: Value) -> Self {
        self.config_schema = schema;
        self
    }

    /// The credential kinds this type accepts and the schema the UI shows for them.
    pub fn credentials(mut self, kinds: &[&str], schema: Value, required: bool) -> Self {
        self.credential_kinds = kinds.iter().map(|k| (*k).to_owned()).collect();
        self.credential_schema = Some(schema);
        self.credential_required = required;
        self
    }

    /// The largest batch this type accepts in one `deliver` call (default 100).
    pub fn max_batch_size(mut self, size: u32) -> Self {
        self.max_batch_size = size.max(1);
        self
    }

    pub(crate) fn into_wit(self) -> DestinationType {
        DestinationType {
            id: self.id,
            name: self.name,
            description: self.description,
            config_schema: self.config_schema.to_string(),
            credential_schema: self.credential_schema.map(|s| s.to_string()),
            credential_kinds: self.credential_kinds,
            credential_required: self.credential_required,
            max_batch_size: self.max_batch_size,
        }
    }
}
