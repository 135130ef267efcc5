//! Accessors and small rules over JSON API objects, shared by the controllers,
//! the scenarios and the metrics: metadata fields, owner references, label
//! selectors, status conditions, pod states and template hashes.

use serde_json::{Map, Value, json};

pub(crate) const NODES: &str = "/v1/nodes";
pub(crate) const PODS: &str = "/v1/pods";
pub(crate) const SERVICES: &str = "/v1/services";
pub(crate) const ENDPOINTS: &str = "/v1/endpoints";
pub(crate) const EVENTS: &str = "/v1/events";
pub(crate) const DEPLOYMENTS: &str = "apps/v1/deployments";
pub(crate) const REPLICA_SETS: &str = "apps/v1/replicasets";
pub(crate) const STATEFUL_SETS: &str = "apps/v1/statefulsets";
pub(crate) const CONTROLLER_REVISIONS: &str = "apps/v1/controllerrevisions";
pub(crate) const HPAS: &str = "autoscaling/v2/horizontalpodautoscalers";
pub(crate) const PDBS: &str = "policy/v1/poddisruptionbudgets";
pub(crate) const POSTGRESQLS: &str = "acid.zalan.do/v1/postgresqls";

pub(crate) fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

pub(crate) fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or("")
}

pub(crate) fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or("")
}

pub(crate) fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

pub(crate) fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// `spec.replicas`, which the API server defaults to 1 for Deployments,
/// ReplicaSets and StatefulSets.
pub(crate) fn spec_replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// UID of the owner reference marked `controller: true`, if any.
pub(crate) fn controller_uid(object: &Value) -> Option<&str> {
    object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .and_then(|r| r["uid"].as_str())
}

/// Owner reference to `owner` marked as its controller, as a workload
/// controller writes it into the objects it creates.
pub(crate) fn controller_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Returns whether `labels` satisfies a `metav1.LabelSelector` (`matchLabels` and
/// `matchExpressions` with In, NotIn, Exists, DoesNotExist). An empty
/// selector matches everything, as for a PodDisruptionBudget.
pub(crate) fn selector_matches(selector: &Value, labels: &Value) -> bool {
    if let Some(match_labels) = selector["matchLabels"].as_object()
        && !map_selector_matches(match_labels, labels)
    {
        return false;
    }
    let expressions = selector["matchExpressions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    expressions.iter().all(|e| expression_matches(e, labels))
}

fn expression_matches(expression: &Value, labels: &Value) -> bool {
    let key = expression["key"].as_str().unwrap_or("");
    let value = labels[key].as_str();
    let values: Vec<&str> = expression["values"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match expression["operator"].as_str().unwrap_or("") {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Returns whether `labels` contains every pair of a plain map selector, as in a
/// Service's `spec.selector`.
pub(crate) fn map_selector_matches(selector: &Map<String, Value>, labels: &Value) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Current time in the RFC 3339 form with second precision that
/// `metav1.Time` uses on the wire.
pub(crate) fn now_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn parse_timestamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Returns the condition of `condition_type` in `status.conditions`.
pub(crate) fn condition<'a>(object: &'a Value, condition_type: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == condition_type)
}

/// Returns whether the condition of `condition_type` has status "True".
pub(crate) fn condition_is_true(object: &Value, condition_type: &str) -> bool {
    condition(object, condition_type).is_some_and(|c| c["status"] == "True")
}

/// Puts `new` into a conditions array by its `type`, unless a condition
/// with the same status, reason and message is already there: then the old
/// one stays with its timestamps, so an unchanged state writes nothing.
pub(crate) fn set_condition(conditions: &mut Value, new: Value) {
    let unchanged = conditions.as_array().is_some_and(|list| {
        list.iter().any(|c| {
            c["type"] == new["type"]
                && c["status"] == new["status"]
                && c["reason"] == new["reason"]
                && c["message"] == new["message"]
        })
    });
    if !unchanged {
        replace_condition(conditions, new);
    }
}

/// Replaces or appends `new` in a conditions array by its `type`. The old
/// `lastTransitionTime` is kept when the status does not change, as the API
/// conventions require; `new` carries the time to use otherwise.
pub(crate) fn replace_condition(conditions: &mut Value, mut new: Value) {
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let list = conditions
        .as_array_mut()
        .expect("conditions was just made an array");
    let position = list.iter().position(|c| c["type"] == new["type"]);
    match position {
        Some(index) => {
            if list[index]["status"] == new["status"]
                && let Some(previous) = list[index].get("lastTransitionTime")
            {
                new["lastTransitionTime"] = previous.clone();
            }
            list[index] = new;
        }
        None => list.push(new),
    }
}

/// Returns whether a pod is being deleted (it has a `deletionTimestamp`).
pub(crate) fn is_terminating(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_null()
}

/// Returns whether a pod counts toward its controller's replicas: not
/// being deleted and not finished.
pub(crate) fn is_active(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    !is_terminating(pod) && phase != "Succeeded" && phase != "Failed"
}

pub(crate) fn is_running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    condition_is_true(pod, "Ready")
}

pub(crate) fn node_name(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// Name of the group a pod belongs to for spreading and load: its `app`
/// label, else its controller's UID, else its own name.
pub(crate) fn app_of(pod: &Value) -> &str {
    label(pod, "app")
        .or_else(|| controller_uid(pod))
        .unwrap_or_else(|| name(pod))
}

/// Resolves an `IntOrString` (`3` or `"25%"`) against `total`. Percentages
/// round up or down as the caller's API field specifies: maxSurge rounds
/// up, maxUnavailable rounds down.
pub(crate) fn int_or_percent(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let text = value.as_str()?;
    if let Some(percent) = text.strip_suffix('%') {
        let percent: i64 = percent.parse().ok()?;
        let scaled = percent * total;
        return Some(if round_up {
            (scaled + 99) / 100
        } else {
            scaled / 100
        });
    }
    text.parse().ok()
}

/// Hash of a pod template, encoded as the apps controllers encode theirs:
/// the 32-bit FNV-1a of the template, printed in decimal, with each digit
/// mapped into a consonant-and-digit alphabet that cannot spell words.
pub(crate) fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut text = String::new();
    write_canonical(template, &mut text);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// Serializes `value` with object keys sorted, so that equal templates hash
/// equally whatever order their keys were written in.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Derives a ClusterIP in 10.96.0.0/16 from the Service's namespace and
/// name. Controllers and scenarios have no IP allocator, so two Services
/// may collide, which is unlikely at the few hundred a scenario has.
pub(crate) fn cluster_ip(namespace: &str, name: &str) -> String {
    let n = (unit_hash(&format!("{namespace}/{name}")) * 65_000.0) as u32 + 256;
    format!("10.96.{}.{}", n / 256, n % 256)
}

/// Deterministic value in [0, 1) derived from `text`, for per-object
/// variation (load jitter) that stays the same between calls.
pub(crate) fn unit_hash(text: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_expressions_match_labels() {
        let labels = json!({"app": "synapse", "tier": "backend"});
        let selector = json!({
            "matchLabels": {"app": "synapse"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["backend", "api"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        });
        assert!(selector_matches(&selector, &labels));
        let other = json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["backend"]}]});
        assert!(!selector_matches(&other, &labels));
        assert!(selector_matches(&json!({}), &labels));
    }

    #[test]
    fn int_or_percent_rounds_by_field() {
        assert_eq!(int_or_percent(&json!("25%"), 3, true), Some(1));
        assert_eq!(int_or_percent(&json!("25%"), 3, false), Some(0));
        assert_eq!(int_or_percent(&json!(2), 3, false), Some(2));
        assert_eq!(int_or_percent(&json!("x%"), 3, false), None);
    }

    #[test]
    fn template_hash_ignores_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"metadata":{"labels":{"app":"x"}},"spec":{"a":1,"b":2}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"spec":{"b":2,"a":1},"metadata":{"labels":{"app":"x"}}}"#)
                .unwrap();
        let c = json!({"spec": {"a": 1, "b": 3}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(
            template_hash(&a)
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn set_condition_keeps_transition_time_when_status_unchanged() {
        let mut conditions =
            json!([{"type": "Ready", "status": "True", "reason": "A", "lastTransitionTime": "t1"}]);
        set_condition(
            &mut conditions,
            json!({"type": "Ready", "status": "True", "reason": "A", "lastTransitionTime": "t2"}),
        );
        assert_eq!(conditions[0]["lastTransitionTime"], "t1");
        set_condition(
            &mut conditions,
            json!({"type": "Ready", "status": "True", "reason": "B", "lastTransitionTime": "t3"}),
        );
        assert_eq!(conditions[0]["reason"], "B");
        assert_eq!(conditions[0]["lastTransitionTime"], "t1");
        set_condition(
            &mut conditions,
            json!({"type": "Ready", "status": "False", "lastTransitionTime": "t4"}),
        );
        assert_eq!(conditions[0]["lastTransitionTime"], "t4");
        assert_eq!(conditions.as_array().unwrap().len(), 1);
    }
}
