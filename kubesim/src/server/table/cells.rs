//! Table cells per kind, in the order of [`super::columns`], formatted as a
//! 1.32 API server formats them. Workloads, network objects and cluster
//! objects have their own modules; simple kinds are formatted here.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{age, cluster, network, workloads};
use crate::registry::ResourceType;

/// Formats the cells of one row, in column order.
pub fn cells(resource: &ResourceType, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(object["metadata"]["name"].as_str().unwrap_or_default());
    let created = age(&object["metadata"]["creationTimestamp"], now);
    let spec = &object["spec"];
    let status = &object["status"];
    match (resource.group, resource.kind) {
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") => {
            workloads::replicated_cells(resource.kind, object, name, created)
        }
        ("apps", "ControllerRevision") => {
            workloads::controller_revision_cells(object, name, created)
        }
        ("", "Pod") => workloads::pod_cells(object, name, created),
        ("autoscaling", "HorizontalPodAutoscaler") => workloads::hpa_cells(object, name, created),
        ("policy", "PodDisruptionBudget") => vec![
            name,
            json!(int_or_string(&spec["minAvailable"])),
            json!(int_or_string(&spec["maxUnavailable"])),
            json!(int(&status["disruptionsAllowed"])),
            json!(created),
        ],
        ("", "Endpoints") => vec![
            name,
            json!(network::endpoints_text(&object["subsets"])),
            json!(created),
        ],
        ("discovery.k8s.io", "EndpointSlice") => {
            network::endpoint_slice_cells(object, name, created)
        }
        ("", "Service") => network::service_cells(object, name, created),
        ("", "Node") => cluster::node_cells(object, name, created),
        ("", "Event") => cluster::event_cells(object, now),
        ("", "Namespace") => vec![
            name,
            json!(text(&status["phase"], "Active")),
            json!(created),
        ],
        ("", "ConfigMap") => {
            let keys = object["data"].as_object().map_or(0, |d| d.len())
                + object["binaryData"].as_object().map_or(0, |d| d.len());
            vec![name, json!(keys), json!(created)]
        }
        ("acid.zalan.do", "postgresql") => vec![
            name,
            json!(text(&spec["teamId"], "")),
            json!(text(&spec["postgresql"]["version"], "")),
            json!(int(&spec["numberOfInstances"])),
            json!(text(&spec["volume"]["size"], "")),
            json!(text(&spec["resources"]["requests"]["cpu"], "")),
            json!(text(&spec["resources"]["requests"]["memory"], "")),
            json!(created),
            json!(text(&status["PostgresClusterStatus"], "")),
        ],
        _ => vec![name, json!(created)],
    }
}

pub(super) fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// `spec.replicas`, which defaults to 1 when absent.
pub(super) fn replicas(spec: &Value) -> i64 {
    spec["replicas"].as_i64().unwrap_or(1)
}

pub(super) fn text(value: &Value, default: &str) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => default.to_string(),
        other => other.to_string(),
    }
}

pub(super) fn int_or_string(value: &Value) -> String {
    match value {
        Value::Null => "N/A".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn containers_and_images(template: &Value) -> (String, String) {
    let containers = template["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    (names.join(","), images.join(","))
}
