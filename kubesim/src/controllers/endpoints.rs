//! The Endpoints controller: for every Service with a selector, an
//! Endpoints object of the same name listing the IPs of matching pods,
//! Ready ones under `addresses` and the rest under `notReadyAddresses`.
//! Services without a selector keep whatever Endpoints clients wrote.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::State;
use super::object::{self, ENDPOINTS, PODS, SERVICES};
use crate::store::StoreError;

pub(super) fn run(state: &State) {
    let _span = tracing::debug_span!("endpoints_controller").entered();
    let (services, _) = state.cluster.store.list(SERVICES, None);
    let (pods, _) = state.cluster.store.list(PODS, None);
    let mut pods_by_namespace: HashMap<&str, Vec<&Value>> = HashMap::new();
    for pod in pods
        .iter()
        .filter(|p| object::is_active(p) && !p["status"]["podIP"].is_null())
    {
        pods_by_namespace
            .entry(object::namespace(pod))
            .or_default()
            .push(pod);
    }
    for service in &services {
        let Some(selector) = service["spec"]["selector"]
            .as_object()
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let selected: Vec<&Value> = pods_by_namespace
            .get(object::namespace(service))
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|p| object::map_selector_matches(selector, &p["metadata"]["labels"]))
                    .collect()
            })
            .unwrap_or_default();
        write_endpoints(state, service, &selected);
    }
}

fn write_endpoints(state: &State, service: &Value, pods: &[&Value]) {
    let subsets = subsets(service, pods);
    let mut labels = service["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if service["spec"]["clusterIP"] == "None" {
        labels.insert("service.kubernetes.io/headless".into(), json!(""));
    }
    let namespace = object::namespace(service);
    let name = object::name(service);
    let result = state.cluster.store.modify(ENDPOINTS, namespace, name, |e| {
        e["metadata"]["labels"] = json!(labels);
        set_subsets(e, &subsets);
    });
    match result {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            let mut endpoints = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
            });
            set_subsets(&mut endpoints, &subsets);
            if let Err(error) = state.cluster.store.create(ENDPOINTS, namespace, endpoints) {
                tracing::warn!(service = name, %error, "failed to create endpoints");
            }
        }
        Err(error) => tracing::warn!(service = name, %error, "failed to update endpoints"),
    }
}

/// Sets `subsets`, leaving the field out when empty as the API server does.
fn set_subsets(endpoints: &mut Value, subsets: &Value) {
    let map = endpoints.as_object_mut().expect("endpoints is an object");
    if subsets.as_array().is_some_and(|s| !s.is_empty()) {
        map.insert("subsets".into(), subsets.clone());
    } else {
        map.remove("subsets");
    }
}

/// Builds one subset with every selected pod, addresses sorted by IP.
fn subsets(service: &Value, pods: &[&Value]) -> Value {
    if pods.is_empty() {
        return json!([]);
    }
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for pod in pods {
        let address = endpoint_address(service, pod);
        if object::is_ready(pod) || service["spec"]["publishNotReadyAddresses"] == true {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
    }
    let by_ip = |a: &Value| {
        a["ip"]
            .as_str()
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
    };
    ready.sort_by_key(by_ip);
    not_ready.sort_by_key(by_ip);

    let ports: Vec<Value> = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|port| endpoint_port(port, pods[0]))
        .collect();
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    json!([subset])
}

/// Builds a pod's address entry. A pod whose `subdomain` names the Service
/// also gets its `hostname`, which gives it a DNS name under a headless
/// Service.
fn endpoint_address(service: &Value, pod: &Value) -> Value {
    let mut address = json!({
        "ip": pod["status"]["podIP"],
        "targetRef": {
            "kind": "Pod",
            "name": object::name(pod),
            "namespace": object::namespace(pod),
            "uid": object::uid(pod),
        },
    });
    if let Some(node) = object::node_name(pod) {
        address["nodeName"] = json!(node);
    }
    if let Some(hostname) = pod["spec"]["hostname"].as_str()
        && pod["spec"]["subdomain"] == object::name(service)
    {
        address["hostname"] = json!(hostname);
    }
    address
}

/// Builds the endpoint port for a service port: its `targetPort`, resolved
/// against the pod's container ports when it is a name, else the service
/// port itself.
fn endpoint_port(port: &Value, pod: &Value) -> Value {
    let target = &port["targetPort"];
    let number = match target {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_i64()),
        _ => None,
    }
    .or_else(|| port["port"].as_i64());
    let mut out = json!({"port": number, "protocol": port["protocol"].as_str().unwrap_or("TCP")});
    if let Some(name) = port["name"].as_str() {
        out["name"] = json!(name);
    }
    out
}
