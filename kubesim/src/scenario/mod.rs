//! Named object sets to start a simulated cluster from.
//!
//! - `butterfly`: the BUTTERFLY platform as the scaling runbook describes
//!   it: eight Deployments with HPAs and PodDisruptionBudgets, the Cassandra,
//!   Kafka and Redis StatefulSets, a Zalando `postgresql` cluster, and three
//!   nodes sized so that the initial state fits with headroom but scaling
//!   several services to their HPA maximum does not.
//! - `large:N`: N small services (Deployment, HPA, PDB, Service) in
//!   namespace `butterfly` on enough nodes, for tests of listing and paging.
//!
//! Loading writes workloads only. Pods, ReplicaSets, Endpoints and statuses
//! come from the controllers: `controllers::spawn` settles a loaded
//! scenario before it returns.

mod builders;
mod butterfly;
mod large;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::registry;
use crate::store::StoreError;

/// Names `load` accepts, for help texts.
pub const NAMES: &[&str] = &["butterfly", "large:N"];

/// Largest N for `large:N`.
pub const LARGE_MAX_SERVICES: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(
        "unknown scenario \"{0}\": expected \"butterfly\" or \"large:N\" with N from 1 to {LARGE_MAX_SERVICES}"
    )]
    Unknown(String),
    #[error(
        "invalid service count \"{0}\" in large:N: expected a whole number from 1 to {LARGE_MAX_SERVICES}"
    )]
    InvalidServiceCount(String),
    #[error("failed to create {kind} \"{name}\" in namespace \"{namespace}\"")]
    Create {
        kind: String,
        namespace: String,
        name: String,
        source: Box<StoreError>,
    },
}

/// Writes the objects of scenario `name` into the cluster's store.
pub fn load(cluster: &Cluster, name: &str) -> Result<(), ScenarioError> {
    let objects = if name == "butterfly" {
        butterfly::objects()
    } else if let Some(count) = name.strip_prefix("large:") {
        let services = count
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LARGE_MAX_SERVICES).contains(n))
            .ok_or_else(|| ScenarioError::InvalidServiceCount(count.to_string()))?;
        large::objects(services)
    } else {
        return Err(ScenarioError::Unknown(name.to_string()));
    };
    for object in objects {
        create(cluster, object)?;
    }
    tracing::info!(scenario = name, "scenario loaded");
    Ok(())
}

/// Stores one object under the resource its `apiVersion` and `kind` name.
fn create(cluster: &Cluster, object: Value) -> Result<(), ScenarioError> {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let failed = |source: StoreError| ScenarioError::Create {
        kind: kind.to_string(),
        namespace: namespace.clone(),
        name: name.clone(),
        source: Box::new(source),
    };
    let resource = registry::find_kind(api_version, kind).ok_or_else(|| {
        failed(StoreError::Invalid(format!(
            "no resource serves {api_version} {kind}"
        )))
    })?;
    cluster
        .store
        .create(&resource.key(), &namespace, object.clone())
        .map_err(failed)?;
    Ok(())
}
