//! A stand-in for the Zalando postgres operator: each `postgresql`
//! resource (acid.zalan.do/v1) gets a StatefulSet of the same name with
//! `spec.numberOfInstances` Spilo pods `<cluster>-0..N-1`, a master Service
//! `<cluster>`, a replica Service `<cluster>-repl` and a
//! PodDisruptionBudget `postgres-<cluster>-pdb`, as the operator creates
//! them. Pod 0 carries `spilo-role: master` and the others `replica`, which
//! Patroni would decide in a real cluster. `status.PostgresClusterStatus`
//! is Running once every instance is Ready.

use serde_json::{Value, json};

use super::object::{self, PDBS, PODS, POSTGRESQLS, SERVICES, STATEFUL_SETS};
use super::{Pass, State};
use crate::store::StoreError;

/// Spilo image of postgres-operator 1.13; it contains PostgreSQL 12 to 16.
const SPILO_IMAGE: &str = "ghcr.io/zalando/spilo-16:3.3-p1";
const ROLE_LABEL: &str = "spilo-role";

pub(super) fn run(state: &mut State, _pass: &Pass) {
    let (clusters, _) = state.cluster.store.list(POSTGRESQLS, None);
    for cluster in clusters.iter().filter(|c| !object::is_terminating(c)) {
        let _span =
            tracing::debug_span!("postgres_operator", postgresql = object::name(cluster)).entered();
        reconcile(state, cluster);
    }
}

fn reconcile(state: &State, cluster: &Value) {
    let instances = cluster["spec"]["numberOfInstances"]
        .as_i64()
        .unwrap_or(1)
        .max(0);
    let created = ensure_stateful_set(state, cluster, instances);
    for service in [master_service(cluster), replica_service(cluster)] {
        create_if_missing(state, SERVICES, service);
    }
    create_if_missing(state, PDBS, budget(cluster));
    let ready = assign_roles(state, cluster);
    let phase = if created {
        "Creating"
    } else if ready == instances {
        "Running"
    } else {
        "Updating"
    };
    let result = state.cluster.store.modify(
        POSTGRESQLS,
        object::namespace(cluster),
        object::name(cluster),
        |c| {
            c["status"] = json!({"PostgresClusterStatus": phase});
        },
    );
    if let Err(error) = result {
        tracing::debug!(%error, "postgresql gone before its status update");
    }
}

fn cluster_labels(cluster: &Value) -> Value {
    json!({
        "application": "spilo",
        "cluster-name": object::name(cluster),
        "team": cluster["spec"]["teamId"].as_str().unwrap_or(""),
    })
}

fn selector_labels(cluster: &Value) -> Value {
    json!({"application": "spilo", "cluster-name": object::name(cluster)})
}

/// Creates the StatefulSet, or sets its replicas to `instances`. Returns
/// whether it was created in this call.
fn ensure_stateful_set(state: &State, cluster: &Value, instances: i64) -> bool {
    let namespace = object::namespace(cluster);
    let name = object::name(cluster);
    let updated = state
        .cluster
        .store
        .modify(STATEFUL_SETS, namespace, name, |s| {
            s["spec"]["replicas"] = json!(instances);
        });
    match updated {
        Ok(_) => false,
        Err(StoreError::NotFound { .. }) => {
            let created = state.cluster.store.create(
                STATEFUL_SETS,
                namespace,
                stateful_set(cluster, instances),
            );
            match created {
                Ok(_) => {
                    tracing::info!(postgresql = name, instances, "created spilo statefulset");
                    true
                }
                Err(error) => {
                    tracing::warn!(postgresql = name, %error, "failed to create spilo statefulset");
                    false
                }
            }
        }
        Err(error) => {
            tracing::warn!(postgresql = name, %error, "failed to scale spilo statefulset");
            false
        }
    }
}

fn stateful_set(cluster: &Value, instances: i64) -> Value {
    let spec = &cluster["spec"];
    let resources = if spec["resources"].is_object() {
        spec["resources"].clone()
    } else {
        json!({"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}})
    };
    let version = spec["postgresql"]["version"].as_str().unwrap_or("16");
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": object::name(cluster), "namespace": object::namespace(cluster), "labels": cluster_labels(cluster)},
        "spec": {
            "replicas": instances,
            "serviceName": object::name(cluster),
            "selector": {"matchLabels": selector_labels(cluster)},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "OnDelete"},
            "template": {
                "metadata": {"labels": cluster_labels(cluster)},
                "spec": {
                    "containers": [{
                        "name": "postgres",
                        "image": SPILO_IMAGE,
                        "ports": [
                            {"name": "patroni", "containerPort": 8008, "protocol": "TCP"},
                            {"name": "postgresql", "containerPort": 5432, "protocol": "TCP"},
                        ],
                        "env": [
                            {"name": "SCOPE", "value": object::name(cluster)},
                            {"name": "PGVERSION", "value": version},
                        ],
                        "resources": resources,
                    }],
                    "terminationGracePeriodSeconds": 300,
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "pgdata"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": spec["volume"]["size"].as_str().unwrap_or("10Gi")}},
                },
            }],
        },
    })
}

fn service(cluster: &Value, name: String, role: &str) -> Value {
    let mut selector = selector_labels(cluster);
    selector[ROLE_LABEL] = json!(role);
    let mut labels = cluster_labels(cluster);
    labels[ROLE_LABEL] = json!(role);
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": object::namespace(cluster), "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": object::cluster_ip(object::namespace(cluster), &name),
            "clusterIPs": [object::cluster_ip(object::namespace(cluster), &name)],
            "selector": selector,
            "ports": [{"name": "postgresql", "port": 5432, "targetPort": 5432, "protocol": "TCP"}],
        },
    })
}

fn master_service(cluster: &Value) -> Value {
    service(cluster, object::name(cluster).to_string(), "master")
}

fn replica_service(cluster: &Value) -> Value {
    service(
        cluster,
        format!("{}-repl", object::name(cluster)),
        "replica",
    )
}

fn budget(cluster: &Value) -> Value {
    let mut selector = selector_labels(cluster);
    selector[ROLE_LABEL] = json!("master");
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": format!("postgres-{}-pdb", object::name(cluster)),
            "namespace": object::namespace(cluster),
            "labels": cluster_labels(cluster),
        },
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}},
    })
}

fn create_if_missing(state: &State, resource: &str, object: Value) {
    let namespace = object::namespace(&object).to_string();
    if state
        .cluster
        .store
        .get(resource, &namespace, object::name(&object))
        .is_some()
    {
        return;
    }
    if let Err(error) = state.cluster.store.create(resource, &namespace, object) {
        tracing::warn!(resource, %error, "failed to create postgres cluster object");
    }
}

/// Labels each instance with its role. Returns the number of Ready
/// instances.
fn assign_roles(state: &State, cluster: &Value) -> i64 {
    let selector = json!({"matchLabels": selector_labels(cluster)});
    let (pods, _) = state
        .cluster
        .store
        .list(PODS, Some(object::namespace(cluster)));
    let prefix = format!("{}-", object::name(cluster));
    let mut ready = 0;
    for pod in pods.iter().filter(|p| object::is_active(p)) {
        if !object::selector_matches(&selector, &pod["metadata"]["labels"]) {
            continue;
        }
        let ordinal = object::name(pod)
            .strip_prefix(&prefix)
            .and_then(|o| o.parse::<i64>().ok());
        let role = if ordinal == Some(0) {
            "master"
        } else {
            "replica"
        };
        if object::label(pod, ROLE_LABEL) != Some(role) {
            let result =
                state
                    .cluster
                    .store
                    .modify(PODS, object::namespace(pod), object::name(pod), |p| {
                        p["metadata"]["labels"][ROLE_LABEL] = json!(role);
                    });
            if let Err(error) = result {
                tracing::debug!(pod = object::name(pod), %error, "pod gone before role assignment");
            }
        }
        if object::is_ready(pod) {
            ready += 1;
        }
    }
    ready
}
