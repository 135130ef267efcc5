//! Helpers shared by the kubesim integration tests: a running [`Sim`] and
//! test-owned workloads, so tests do not depend on the scenario's contents
//! beyond the `butterfly` namespace.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use kubesim::Sim;
use kubesim::cluster::Timing;
use serde_json::json;

pub const NAMESPACE: &str = "butterfly";

/// Upper bound for any wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn start() -> Sim {
    Sim::start("butterfly", Timing::fast()).expect("kubesim starts with the butterfly scenario")
}

/// Builds a Deployment with an application container and a sidecar.
pub fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "suite": "kubesim-tests"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "app", "image": format!("registry.local/{name}:1.0"),
                     "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
                    {"name": "sidecar", "image": "registry.local/proxy:2.1",
                     "resources": {"requests": {"cpu": "50m"}}},
                ]},
            },
        },
    }))
    .expect("test deployment is a valid Deployment")
}

pub async fn create_deployment(client: &kube::Client, name: &str, replicas: i32) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    api.create(&PostParams::default(), &deployment(name, replicas))
        .await
        .expect("creating the test deployment succeeds")
}

/// Extracts the API error status of a failed kube-rs call.
pub fn api_status<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
