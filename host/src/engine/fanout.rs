//! Which destinations an event goes to: their `event_types` globs (`order.*`); none means all.

use globset::{Glob, GlobMatcher};

use crate::store::FanoutTarget;

pub fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() || pattern.len() > 255 {
        return Err("a pattern is 1 to 255 characters".into());
    }
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| e.kind().to_string())
}

pub fn matches(target: &FanoutTarget, event_type: &str) -> bool {
    let patterns: Vec<String> = serde_json::from_str(&target.event_types).unwrap_or_default();
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| compile(p).map(|m| m.is_match(event_type)).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(types: &str) -> FanoutTarget {
        FanoutTarget {
            id: "dst".into(),
            event_types: types.into(),
        }
    }

    #[test]
    fn globs_select_event_types() {
        assert!(matches(&target("[]"), "anything"));
        assert!(matches(&target(r#"["order.*"]"#), "order.created"));
        assert!(!matches(&target(r#"["order.*"]"#), "invoice.paid"));
        assert!(matches(
            &target(r#"["invoice.paid", "order.*"]"#),
            "invoice.paid"
        ));
    }
}
