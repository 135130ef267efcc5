//! `discovery.k8s.io/v1` EndpointSlices, derived on read from the stored
//! Endpoints objects, one slice per Endpoints subset.
//!
//! A real cluster's EndpointSlice controller writes slices beside the
//! Endpoints. kubesim's controllers maintain only Endpoints, but kubectl 1.32
//! `describe service` reads its endpoint list from the slices.

use serde_json::{Value, json};

use crate::registry;
use crate::store;

/// Label linking a slice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// EndpointSlices of the Endpoints in `namespace` (all namespaces for `None`).
pub fn endpoint_slices(store: &store::Store, namespace: Option<&str>) -> Vec<Value> {
    let endpoints = registry::find("", "v1", "endpoints").expect("endpoints are registered");
    let (all, _) = store.list(&endpoints.key(), namespace);
    all.iter().flat_map(slices_of).collect()
}

fn slices_of(endpoints: &Value) -> Vec<Value> {
    let metadata = &endpoints["metadata"];
    let service = metadata["name"].as_str().unwrap_or_default();
    let subsets = endpoints["subsets"].as_array().cloned().unwrap_or_default();
    subsets
        .iter()
        .enumerate()
        .map(|(index, subset)| {
            let mut endpoints_list: Vec<Value> = Vec::new();
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for address in subset[field].as_array().into_iter().flatten() {
                    endpoints_list.push(slice_endpoint(address, ready));
                }
            }
            let ports: Vec<Value> = subset["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    json!({
                        "name": p["name"].as_str().unwrap_or_default(),
                        "port": p["port"],
                        "protocol": p["protocol"].as_str().unwrap_or("TCP"),
                    })
                })
                .collect();
            json!({
                "kind": "EndpointSlice",
                "apiVersion": "discovery.k8s.io/v1",
                "metadata": {
                    "name": format!("{service}-{}", slice_suffix(service, index)),
                    "namespace": metadata["namespace"],
                    "labels": {
                        SERVICE_NAME_LABEL: service,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    "resourceVersion": metadata["resourceVersion"],
                    "creationTimestamp": metadata["creationTimestamp"],
                    "generation": 1,
                },
                "addressType": "IPv4",
                "endpoints": endpoints_list,
                "ports": ports,
            })
        })
        .collect()
}

fn slice_endpoint(address: &Value, ready: bool) -> Value {
    let mut endpoint = json!({
        "addresses": [address["ip"]],
        "conditions": {"ready": ready, "serving": ready, "terminating": false},
    });
    if let Some(node) = address["nodeName"].as_str() {
        endpoint["nodeName"] = json!(node);
    }
    if !address["targetRef"].is_null() {
        endpoint["targetRef"] = address["targetRef"].clone();
    }
    endpoint
}

/// Derives a stable five-character suffix per service and subset, in the
/// alphabet of generated names.
fn slice_suffix(service: &str, index: usize) -> String {
    let seed = service.bytes().fold(index as u64 + 1, |hash, b| {
        hash.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    store::suffix(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_carry_ready_and_not_ready_endpoints() {
        let endpoints = json!({
            "metadata": {"name": "synapse", "namespace": "butterfly", "resourceVersion": "9"},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.1", "nodeName": "node-a"}],
                "notReadyAddresses": [{"ip": "10.0.0.2"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }],
        });
        let slices = slices_of(&endpoints);
        assert_eq!(slices.len(), 1);
        let slice = &slices[0];
        assert_eq!(slice["metadata"]["labels"][SERVICE_NAME_LABEL], "synapse");
        assert_eq!(slice["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(slice["endpoints"][0]["nodeName"], "node-a");
        assert_eq!(slice["endpoints"][1]["conditions"]["ready"], false);
        assert_eq!(slice["ports"][0]["port"], 8080);
    }
}
