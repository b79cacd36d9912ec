//! Which destinations an event goes to: their `event_types` globs (`order.*`); none means all.

use globset::{Glob, GlobMatcher, GlobSetBuilder};

use crate::store::{FanoutTarget, Matcher};

pub fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() || pattern.len() > 255 {
        return Err("a pattern is 1 to 255 characters".into());
    }
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| e.kind().to_string())
}

/// One destination's patterns compiled into a single set, once, for every event of an ingest.
pub fn matcher(target: &FanoutTarget) -> Matcher {
    let patterns: Vec<String> = serde_json::from_str(&target.event_types).unwrap_or_default();
    if patterns.is_empty() {
        return Box::new(|_| true);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in &patterns {
        // Patterns were checked when stored; one that no longer compiles matches nothing.
        if let Ok(glob) = Glob::new(pattern) {
            set.add(glob);
        }
    }
    match set.build() {
        Ok(set) => Box::new(move |event_type| set.is_match(event_type)),
        Err(_) => Box::new(|_| false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(types: &str, event_type: &str) -> bool {
        matcher(&FanoutTarget {
            id: "dst".into(),
            event_types: types.into(),
        })(event_type)
    }

    #[test]
    fn globs_select_event_types() {
        assert!(matches("[]", "anything"));
        assert!(matches(r#"["order.*"]"#, "order.created"));
        assert!(!matches(r#"["order.*"]"#, "invoice.paid"));
        assert!(matches(r#"["invoice.paid", "order.*"]"#, "invoice.paid"));
    }
}
