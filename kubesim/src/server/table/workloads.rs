//! Cells of workloads and their pods and autoscalers.

use serde_json::{Value, json};

use super::cells::{containers_and_images, int, replicas, text};
use crate::server::selector::selector_text;

/// Cells of Deployments, StatefulSets and ReplicaSets, whose columns differ
/// only in the replica counts shown.
pub(super) fn replicated_cells(
    kind: &str,
    object: &Value,
    name: Value,
    created: String,
) -> Vec<Value> {
    let spec = &object["spec"];
    let status = &object["status"];
    let (containers, images) = containers_and_images(&spec["template"]);
    let ready = json!(format!(
        "{}/{}",
        int(&status["readyReplicas"]),
        replicas(spec)
    ));
    let selector = json!(selector_text(&spec["selector"]));
    match kind {
        "Deployment" => vec![
            name,
            ready,
            json!(int(&status["updatedReplicas"])),
            json!(int(&status["availableReplicas"])),
            json!(created),
            json!(containers),
            json!(images),
            selector,
        ],
        "StatefulSet" => vec![
            name,
            ready,
            json!(created),
            json!(containers),
            json!(images),
        ],
        _ => vec![
            name,
            json!(replicas(spec)),
            json!(int(&status["replicas"])),
            json!(int(&status["readyReplicas"])),
            json!(created),
            json!(containers),
            json!(images),
            selector,
        ],
    }
}

/// Cells of a ControllerRevision: its controller as `kind.group/name`.
pub(super) fn controller_revision_cells(
    object: &Value,
    name: Value,
    created: String,
) -> Vec<Value> {
    let owner = object["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .map(|r| {
            let kind = r["kind"].as_str().unwrap_or_default().to_lowercase();
            let api_version = r["apiVersion"].as_str().unwrap_or_default();
            let group = api_version.split('/').next().unwrap_or_default();
            format!("{kind}.{group}/{}", r["name"].as_str().unwrap_or_default())
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        name,
        json!(owner),
        json!(int(&object["revision"])),
        json!(created),
    ]
}

pub(super) fn pod_cells(pod: &Value, name: Value, created: String) -> Vec<Value> {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let total = spec["containers"].as_array().map_or(0, Vec::len);
    let statuses = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses.iter().map(|s| int(&s["restartCount"])).sum();
    let gates = spec["readinessGates"].as_array().map_or(0, Vec::len);
    let gates = if gates == 0 {
        "<none>".to_string()
    } else {
        format!("0/{gates}")
    };
    vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts.to_string()),
        json!(created),
        json!(text(&status["podIP"], "<none>")),
        json!(text(&spec["nodeName"], "<none>")),
        json!(text(&status["nominatedNodeName"], "<none>")),
        json!(gates),
    ]
}

/// Formats the STATUS column of a pod: `Terminating`, a container's waiting or
/// terminated reason, the pod's reason, or its phase.
fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".into();
    }
    let status = &pod["status"];
    let mut reason = text(&status["reason"], "");
    if reason.is_empty() {
        reason = text(&status["phase"], "Pending");
    }
    for container in status["containerStatuses"].as_array().into_iter().flatten() {
        let state = &container["state"];
        if let Some(waiting) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = waiting.to_string();
        } else if let Some(terminated) = state["terminated"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = terminated.to_string();
        }
    }
    reason
}

pub(super) fn hpa_cells(hpa: &Value, name: Value, created: String) -> Vec<Value> {
    let spec = &hpa["spec"];
    let target = &spec["scaleTargetRef"];
    let reference = format!(
        "{}/{}",
        target["kind"].as_str().unwrap_or_default(),
        target["name"].as_str().unwrap_or_default()
    );
    vec![
        name,
        json!(reference),
        json!(hpa_targets(hpa)),
        json!(
            spec["minReplicas"]
                .as_i64()
                .map_or("<unset>".to_string(), |n| n.to_string())
        ),
        json!(int(&spec["maxReplicas"])),
        json!(int(&hpa["status"]["currentReplicas"])),
        json!(created),
    ]
}

/// Formats the TARGETS column: `cpu: 45%/70%` per resource metric, `<unknown>` for
/// a current value the HPA has not observed yet.
fn hpa_targets(hpa: &Value) -> String {
    let metrics = hpa["spec"]["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if metrics.is_empty() {
        return "<none>".into();
    }
    let current = hpa["status"]["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let parts: Vec<String> = metrics
        .iter()
        .map(|metric| {
            let kind = metric["type"].as_str().unwrap_or_default();
            let source = match kind {
                "Resource" => &metric["resource"],
                "ContainerResource" => &metric["containerResource"],
                "Pods" => &metric["pods"],
                "Object" => &metric["object"],
                _ => &metric["external"],
            };
            let metric_name = source["name"]
                .as_str()
                .or_else(|| source["metric"]["name"].as_str())
                .unwrap_or_default();
            let observed = current.iter().find(|c| {
                c["type"] == kind
                    && (c["resource"]["name"] == metric_name
                        || c["containerResource"]["name"] == metric_name
                        || c[kind_field(kind)]["metric"]["name"] == metric_name)
            });
            let target = &source["target"];
            let (wanted, actual) = if let Some(percent) = target["averageUtilization"].as_i64() {
                let actual = observed
                    .and_then(|c| c[kind_field(kind)]["current"]["averageUtilization"].as_i64())
                    .map_or("<unknown>".to_string(), |v| format!("{v}%"));
                (format!("{percent}%"), actual)
            } else {
                let wanted = text(&target["averageValue"], &text(&target["value"], "<unset>"));
                let current = observed.map(|c| &c[kind_field(kind)]["current"]);
                let actual = current
                    .map(|c| text(&c["averageValue"], &text(&c["value"], "<unknown>")))
                    .unwrap_or_else(|| "<unknown>".into());
                (wanted, actual)
            };
            format!("{metric_name}: {actual}/{wanted}")
        })
        .collect();
    parts.join(", ")
}

fn kind_field(kind: &str) -> &'static str {
    match kind {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        _ => "external",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::cells::cells;
    use super::super::columns::for_resource;
    use super::*;
    use crate::registry;

    #[test]
    fn deployment_cells_follow_columns() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let deployment = json!({
            "metadata": {"name": "synapse", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "synapse"}},
                     "template": {"spec": {"containers": [{"name": "synapse", "image": "synapse:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let cells = cells(deployments, &deployment, Utc::now());
        assert_eq!(cells.len(), for_resource(deployments).len());
        assert_eq!(cells[1], "2/3");
        assert_eq!(cells[2], 3);
        assert_eq!(cells[7], "app=synapse");
    }

    #[test]
    fn pod_status_prefers_container_waiting_reason() {
        let pod = json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Running", "containerStatuses": [
                {"ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]},
        });
        assert_eq!(pod_status(&pod), "CrashLoopBackOff");
    }

    #[test]
    fn hpa_targets_show_current_and_target_utilization() {
        let hpa = json!({
            "spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
            "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}]},
        });
        assert_eq!(hpa_targets(&hpa), "cpu: 45%/70%");
        let unobserved = json!({"spec": hpa["spec"].clone()});
        assert_eq!(hpa_targets(&unobserved), "cpu: <unknown>/70%");
    }
}
