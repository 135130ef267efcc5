//! Cells of Nodes and Events.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::age;
use super::cells::text;

pub(super) fn node_cells(node: &Value, name: Value, created: String) -> Vec<Value> {
    let status = &node["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    let mut state = match ready.map(|c| c["status"].as_str().unwrap_or_default()) {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"] == true {
        state.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    roles.sort();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        status["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == kind)
            .and_then(|a| a["address"].as_str())
            .unwrap_or("<none>")
            .to_string()
    };
    let info = &status["nodeInfo"];
    vec![
        name,
        json!(state),
        json!(roles),
        json!(created),
        json!(text(&info["kubeletVersion"], "")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(text(&info["osImage"], "<unknown>")),
        json!(text(&info["kernelVersion"], "<unknown>")),
        json!(text(&info["containerRuntimeVersion"], "<unknown>")),
    ]
}

pub(super) fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let involved = &event["involvedObject"];
    let last = [
        &event["lastTimestamp"],
        &event["eventTime"],
        &event["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find(|t| t.is_string())
    .cloned()
    .unwrap_or(Value::Null);
    let first = [
        &event["firstTimestamp"],
        &event["eventTime"],
        &event["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find(|t| t.is_string())
    .cloned()
    .unwrap_or(Value::Null);
    let object = format!(
        "{}/{}",
        involved["kind"].as_str().unwrap_or_default().to_lowercase(),
        involved["name"].as_str().unwrap_or_default()
    );
    let source = [&event["source"]["component"], &event["reportingComponent"]]
        .into_iter()
        .find_map(|s| s.as_str().filter(|s| !s.is_empty()))
        .unwrap_or_default();
    vec![
        json!(age(&last, now)),
        json!(text(&event["type"], "")),
        json!(text(&event["reason"], "")),
        json!(object),
        json!(text(&involved["fieldPath"], "")),
        json!(source),
        json!(text(&event["message"], "")),
        json!(age(&first, now)),
        json!(event["count"].as_i64().unwrap_or(1).to_string()),
        json!(event["metadata"]["name"].as_str().unwrap_or_default()),
    ]
}
