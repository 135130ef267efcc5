//! Label and field selectors of list and watch requests.
//!
//! Label selector syntax: comma-separated requirements `key`, `!key`,
//! `key=value`, `key==value`, `key!=value`, `key in (a,b)`,
//! `key notin (a,b)`, `key>N`, `key<N`. Field selector syntax:
//! comma-separated `field=value`, `field==value`, `field!=value`, with `\`
//! escaping `,`, `=` and `\` in values.

use serde_json::Value;

use super::error::ApiError;
use crate::registry::ResourceType;

#[derive(Debug, Clone, PartialEq)]
enum LabelRequirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_label_requirement(part).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unable to parse requirement: found {part:?}, expected one of: key, !key, key=value, key!=value, key in (v1,v2), key notin (v1,v2)"
                ))
            })?);
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            LabelRequirement::Exists(k) => label(k).is_some(),
            LabelRequirement::NotExists(k) => label(k).is_none(),
            LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelRequirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            LabelRequirement::GreaterThan(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelRequirement::LessThan(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }

    /// Tests an object's `metadata.labels`.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.requirements.is_empty() || self.matches(&object["metadata"]["labels"])
    }
}

/// Splits on commas outside parentheses, so `a in (x,y),b` gives two parts.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_label_requirement(part: &str) -> Option<LabelRequirement> {
    if let Some(key) = part.strip_prefix('!') {
        let key = valid_key(key.trim())?;
        return Some(LabelRequirement::NotExists(key));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Some(LabelRequirement::NotEquals(
            valid_key(key.trim())?,
            valid_value(value.trim())?,
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Some(LabelRequirement::Equals(
            valid_key(key.trim())?,
            valid_value(value.trim())?,
        ));
    }
    if let Some((key, value)) = part.split_once('>') {
        return Some(LabelRequirement::GreaterThan(
            valid_key(key.trim())?,
            value.trim().parse().ok()?,
        ));
    }
    if let Some((key, value)) = part.split_once('<') {
        return Some(LabelRequirement::LessThan(
            valid_key(key.trim())?,
            value.trim().parse().ok()?,
        ));
    }
    let words: Vec<&str> = part
        .splitn(3, char::is_whitespace)
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        [key] => Some(LabelRequirement::Exists(valid_key(key)?)),
        [key, operator, set] => {
            let values = parse_set(set)?;
            match *operator {
                "in" => Some(LabelRequirement::In(valid_key(key)?, values)),
                "notin" => Some(LabelRequirement::NotIn(valid_key(key)?, values)),
                _ => None,
            }
        }
        _ => {
            // `key in(a,b)` without a space before the parenthesis.
            let (head, set) = part.split_once('(')?;
            let mut words = head.split_whitespace();
            let (key, operator) = (words.next()?, words.next()?);
            let values = parse_set(&format!("({set}"))?;
            match operator {
                "in" => Some(LabelRequirement::In(valid_key(key)?, values)),
                "notin" => Some(LabelRequirement::NotIn(valid_key(key)?, values)),
                _ => None,
            }
        }
    }
}

fn parse_set(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').map(|v| valid_value(v.trim())).collect()
}

/// Label keys: an optional DNS prefix and `/`, then a name of alphanumerics,
/// `-`, `_` and `.`.
fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_string())
}

fn valid_value(value: &str) -> Option<String> {
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| value.to_string())
}

#[derive(Debug, Clone, PartialEq)]
struct FieldRequirement {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `text`, rejecting fields the real API server does not index
    /// for this resource (400 "field label not supported").
    pub fn parse(text: &str, resource: &ResourceType) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_escaped(text) {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some((f, v)) = split_unescaped(&part, "!=") {
                (f, v, true)
            } else if let Some((f, v)) =
                split_unescaped(&part, "==").or_else(|| split_unescaped(&part, "="))
            {
                (f, v, false)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let field = field.trim().to_string();
            if !field_supported(resource, &field) {
                return Err(ApiError::BadRequest(format!(
                    "\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )));
            }
            requirements.push(FieldRequirement {
                field,
                value: unescape(&value),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(object, &r.field);
            (actual == r.value) != r.negated
        })
    }
}

/// Field selectors each kind supports on a real API server (1.32).
fn field_supported(resource: &ResourceType, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        ("", "Event") => {
            field.starts_with("involvedObject.")
                || matches!(field, "reason" | "reportingComponent" | "source" | "type")
        }
        ("", "Node") => field == "spec.unschedulable",
        ("", "Namespace") => field == "status.phase",
        ("apps", "ReplicaSet") => field == "status.replicas",
        _ => false,
    }
}

/// Reads the value a field selector compares: the field as a string, or
/// empty when absent, so `spec.nodeName=` selects unscheduled pods.
fn field_value(object: &Value, field: &str) -> String {
    if field == "source" {
        // Events index `source` as the reporting component's name.
        return field_value(object, "source.component");
    }
    let value = field.split('.').try_fold(object, |v, key| v.get(key));
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => {
            if field == "spec.unschedulable" || field == "spec.hostNetwork" {
                "false".into()
            } else {
                String::new()
            }
        }
        Some(other) => other.to_string(),
    }
}

fn split_escaped(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = parts.last_mut().expect("parts is never empty");
                last.push('\\');
                if let Some(next) = chars.next() {
                    last.push(next);
                }
            }
            ',' => parts.push(String::new()),
            _ => parts.last_mut().expect("parts is never empty").push(c),
        }
    }
    parts
}

fn split_unescaped(text: &str, operator: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if text[i..].starts_with(operator) {
            return Some((
                text[..i].to_string(),
                text[i + operator.len()..].to_string(),
            ));
        }
        i += 1;
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats a `spec.selector` (matchLabels and matchExpressions) as selector
/// text, as the Scale subresource's `status.selector` carries it.
pub fn selector_text(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (key, value) in labels {
            parts.push(format!("{key}={}", value.as_str().unwrap_or_default()));
        }
    }
    if let Some(expressions) = selector["matchExpressions"].as_array() {
        for expression in expressions {
            let key = expression["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = expression["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match expression["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use serde_json::json;

    fn labels() -> Value {
        json!({"app": "synapse", "tier": "backend", "rank": "3"})
    }

    #[test]
    fn label_selector_operators() {
        let cases = [
            ("app=synapse", true),
            ("app==synapse", true),
            ("app!=synapse", false),
            ("app in (nexus,synapse)", true),
            ("app notin (nexus,synapse)", false),
            ("tier,app=synapse", true),
            ("!tier", false),
            ("!missing", true),
            ("missing", false),
            ("rank>2", true),
            ("rank<2", false),
            ("app in (nexus, synapse),tier=backend", true),
            ("", true),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).unwrap();
            assert_eq!(selector.matches(&labels()), expected, "selector {text:?}");
        }
    }

    #[test]
    fn label_selector_rejects_garbage() {
        assert!(LabelSelector::parse("app=(x").is_err());
        assert!(LabelSelector::parse("app in x").is_err());
    }

    #[test]
    fn field_selector_for_describe_node() {
        let pods = registry::find("", "v1", "pods").unwrap();
        let selector = FieldSelector::parse(
            "spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed",
            pods,
        )
        .unwrap();
        let running = json!({"spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}});
        let done = json!({"spec": {"nodeName": "node-1"}, "status": {"phase": "Succeeded"}});
        let elsewhere = json!({"spec": {"nodeName": "node-2"}, "status": {"phase": "Running"}});
        assert!(selector.matches(&running));
        assert!(!selector.matches(&done));
        assert!(!selector.matches(&elsewhere));
    }

    #[test]
    fn field_selector_rejects_unindexed_field() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        assert!(FieldSelector::parse("spec.replicas=3", deployments).is_err());
        assert!(FieldSelector::parse("metadata.name=synapse", deployments).is_ok());
    }

    #[test]
    fn selector_text_sorts_requirements() {
        let selector = json!({"matchLabels": {"tier": "web", "app": "synapse"}});
        assert_eq!(selector_text(&selector), "app=synapse,tier=web");
    }
}
