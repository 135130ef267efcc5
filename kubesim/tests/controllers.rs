//! Scenario, controller and metrics behaviour, checked on the store
//! directly: no HTTP server is involved.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use kubesim::cluster::{Cluster, Timing};
use kubesim::controllers::{self, Controllers};
use kubesim::{metrics, scenario};
use serde_json::{Value, json};
use tokio::time::Instant;

const NS: &str = "butterfly";
const PODS: &str = "/v1/pods";
const NODES: &str = "/v1/nodes";
const EVENTS: &str = "/v1/events";
const ENDPOINTS: &str = "/v1/endpoints";
const DEPLOYMENTS: &str = "apps/v1/deployments";
const REPLICA_SETS: &str = "apps/v1/replicasets";
const STATEFUL_SETS: &str = "apps/v1/statefulsets";
const CONTROLLER_REVISIONS: &str = "apps/v1/controllerrevisions";
const HPAS: &str = "autoscaling/v2/horizontalpodautoscalers";
const PDBS: &str = "policy/v1/poddisruptionbudgets";
const POSTGRESQLS: &str = "acid.zalan.do/v1/postgresqls";

const APPS: &[(&str, i64)] = &[
    ("capsule", 4),
    ("odyssey-core", 3),
    ("odyssey-horizonbox", 2),
    ("odyssey-quantumroom", 2),
    ("perception", 3),
    ("plato", 2),
    ("nexus", 3),
    ("synapse", 3),
];

/// Upper bound for any wait; with fast timing a change settles in about a
/// second.
const WAIT: Duration = Duration::from_secs(20);

fn start(scenario_name: &str) -> (Cluster, Controllers) {
    let cluster = Cluster::new(Timing::fast());
    scenario::load(&cluster, scenario_name).expect("scenario loads");
    let controllers = controllers::spawn(cluster.clone());
    (cluster, controllers)
}

fn get(cluster: &Cluster, resource: &str, name: &str) -> Value {
    cluster
        .store
        .get(resource, NS, name)
        .unwrap_or_else(|| panic!("{resource} {name} exists"))
}

fn pods_of(cluster: &Cluster, app: &str) -> Vec<Value> {
    let (pods, _) = cluster.store.list(PODS, Some(NS));
    pods.into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// kubectl's test for a finished Deployment rollout.
fn deployment_rolled_out(deployment: &Value) -> bool {
    let status = &deployment["status"];
    let replicas = int(&deployment["spec"]["replicas"]);
    int(&status["observedGeneration"]) >= int(&deployment["metadata"]["generation"])
        && int(&status["updatedReplicas"]) == replicas
        && int(&status["replicas"]) == int(&status["updatedReplicas"])
        && int(&status["availableReplicas"]) == int(&status["updatedReplicas"])
}

/// kubectl's test for a finished StatefulSet rollout without a partition.
fn stateful_set_rolled_out(set: &Value) -> bool {
    let status = &set["status"];
    int(&status["observedGeneration"]) >= int(&set["metadata"]["generation"])
        && int(&status["readyReplicas"]) >= int(&set["spec"]["replicas"])
        && status["currentRevision"] == status["updateRevision"]
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn events(cluster: &Cluster, reason: &str) -> Vec<Value> {
    let (events, _) = cluster.store.list(EVENTS, None);
    events
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

fn scale(cluster: &Cluster, resource: &str, name: &str, replicas: i64) {
    cluster
        .store
        .modify(resource, NS, name, |o| {
            o["spec"]["replicas"] = json!(replicas)
        })
        .expect("scale succeeds");
}

#[tokio::test]
async fn butterfly_is_settled_after_spawn() {
    let (cluster, _controllers) = start("butterfly");

    let (nodes, _) = cluster.store.list(NODES, None);
    assert_eq!(nodes.len(), 3);
    for (app, replicas) in APPS {
        let deployment = get(&cluster, DEPLOYMENTS, app);
        assert_eq!(
            int(&deployment["spec"]["replicas"]),
            *replicas,
            "{app} replicas"
        );
        assert_eq!(
            int(&deployment["status"]["readyReplicas"]),
            *replicas,
            "{app} ready"
        );
        assert!(deployment_rolled_out(&deployment), "{app} rolled out");
        assert_eq!(
            deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        assert_eq!(
            condition(&deployment, "Progressing").unwrap()["reason"],
            "NewReplicaSetAvailable"
        );
        assert_eq!(
            condition(&deployment, "Available").unwrap()["status"],
            "True"
        );
        let pods = pods_of(&cluster, app);
        assert_eq!(pods.len() as i64, *replicas, "{app} pods");
        for pod in &pods {
            assert!(is_ready(pod), "{} ready", pod["metadata"]["name"]);
            assert_eq!(pod["status"]["phase"], "Running");
            assert!(
                pod["status"]["podIP"]
                    .as_str()
                    .unwrap()
                    .starts_with("10.244.")
            );
            assert!(
                pod["spec"]["nodeName"]
                    .as_str()
                    .unwrap()
                    .starts_with("node-")
            );
            assert!(pod["status"]["startTime"].is_string());
            assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
        }
        let hpa = get(&cluster, HPAS, &format!("{app}-hpa"));
        assert_eq!(int(&hpa["status"]["desiredReplicas"]), *replicas);
        let pdb = get(&cluster, PDBS, &format!("{app}-pdb"));
        assert_eq!(int(&pdb["status"]["currentHealthy"]), *replicas);
        let endpoints = get(&cluster, ENDPOINTS, app);
        assert_eq!(
            endpoints["subsets"][0]["addresses"]
                .as_array()
                .unwrap()
                .len() as i64,
            *replicas
        );
    }
    for (set, replicas) in [
        ("cassandra", 3),
        ("kafka", 3),
        ("redis", 6),
        ("butterfly-postgres", 2),
    ] {
        let stateful_set = get(&cluster, STATEFUL_SETS, set);
        assert_eq!(
            int(&stateful_set["status"]["readyReplicas"]),
            replicas,
            "{set} ready"
        );
        assert!(stateful_set_rolled_out(&stateful_set), "{set} rolled out");
        for ordinal in 0..replicas {
            assert!(is_ready(&get(&cluster, PODS, &format!("{set}-{ordinal}"))));
        }
    }
    let postgres = get(&cluster, POSTGRESQLS, "butterfly-postgres");
    assert_eq!(postgres["status"]["PostgresClusterStatus"], "Running");
    assert_eq!(
        get(&cluster, PODS, "butterfly-postgres-0")["metadata"]["labels"]["spilo-role"],
        "master"
    );
    assert_eq!(
        get(&cluster, PODS, "butterfly-postgres-1")["metadata"]["labels"]["spilo-role"],
        "replica"
    );
    let (pods, _) = cluster.store.list(PODS, None);
    let ips: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str())
        .collect();
    assert_eq!(ips.len(), pods.len(), "pod IPs are unique");
}

#[tokio::test]
async fn idle_cluster_stops_writing() {
    let (cluster, _controllers) = start("butterfly");
    tokio::time::sleep(cluster.timing.hpa_interval * 2).await;

    let before = cluster.store.resource_version();
    tokio::time::sleep(cluster.timing.hpa_interval * 4).await;

    assert_eq!(cluster.store.resource_version(), before);
}

#[tokio::test]
async fn butterfly_objects_parse_as_typed_kubernetes_objects() {
    use k8s_openapi::api::{apps, autoscaling, core, policy};
    let (cluster, _controllers) = start("butterfly");

    fn parse_all<T: serde::de::DeserializeOwned>(cluster: &Cluster, resource: &str) -> usize {
        let (items, _) = cluster.store.list(resource, None);
        for item in &items {
            if let Err(error) = serde_json::from_value::<T>(item.clone()) {
                panic!(
                    "{resource} {} does not parse: {error}",
                    item["metadata"]["name"]
                );
            }
        }
        items.len()
    }
    assert!(parse_all::<apps::v1::Deployment>(&cluster, DEPLOYMENTS) > 0);
    assert!(parse_all::<apps::v1::ReplicaSet>(&cluster, REPLICA_SETS) > 0);
    assert!(parse_all::<apps::v1::StatefulSet>(&cluster, STATEFUL_SETS) > 0);
    assert!(parse_all::<apps::v1::ControllerRevision>(&cluster, CONTROLLER_REVISIONS) > 0);
    assert!(parse_all::<autoscaling::v2::HorizontalPodAutoscaler>(&cluster, HPAS) > 0);
    assert!(parse_all::<policy::v1::PodDisruptionBudget>(&cluster, PDBS) > 0);
    assert!(parse_all::<core::v1::Pod>(&cluster, PODS) > 0);
    assert!(parse_all::<core::v1::Node>(&cluster, NODES) > 0);
    assert!(parse_all::<core::v1::Event>(&cluster, EVENTS) > 0);
    assert!(parse_all::<core::v1::Endpoints>(&cluster, ENDPOINTS) > 0);
    assert!(parse_all::<core::v1::Service>(&cluster, "/v1/services") > 0);
    assert!(parse_all::<core::v1::Namespace>(&cluster, "/v1/namespaces") > 0);
}

#[tokio::test]
async fn deployment_scale_up_adds_ready_pod() {
    let (cluster, _controllers) = start("butterfly");

    scale(&cluster, DEPLOYMENTS, "synapse", 4);
    wait_until("synapse rolled out at 4", || {
        deployment_rolled_out(&get(&cluster, DEPLOYMENTS, "synapse"))
    })
    .await;

    let deployment = get(&cluster, DEPLOYMENTS, "synapse");
    assert_eq!(int(&deployment["status"]["readyReplicas"]), 4);
    assert_eq!(int(&deployment["status"]["availableReplicas"]), 4);
    assert_eq!(int(&deployment["status"]["observedGeneration"]), 2);
    let pods = pods_of(&cluster, "synapse");
    assert_eq!(pods.len(), 4);
    assert!(pods.iter().all(is_ready));
    let set_name = pods[0]["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pods.iter().all(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{set_name}-"))
    }));
    let expected = format!("Scaled up replica set {set_name} from 3 to 4");
    assert!(
        events(&cluster, "ScalingReplicaSet")
            .iter()
            .any(|e| e["message"] == expected.as_str())
    );
    let endpoints = get(&cluster, ENDPOINTS, "synapse");
    assert_eq!(
        endpoints["subsets"][0]["addresses"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn deployment_scale_down_removes_newest_pod() {
    let (cluster, _controllers) = start("butterfly");
    let before: BTreeSet<String> = pods_of(&cluster, "plato")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();

    scale(&cluster, DEPLOYMENTS, "plato", 3);
    wait_until("plato at 3", || {
        deployment_rolled_out(&get(&cluster, DEPLOYMENTS, "plato"))
    })
    .await;
    scale(&cluster, DEPLOYMENTS, "plato", 2);
    wait_until("plato back at 2", || {
        deployment_rolled_out(&get(&cluster, DEPLOYMENTS, "plato"))
            && pods_of(&cluster, "plato").len() == 2
    })
    .await;

    let after: BTreeSet<String> = pods_of(&cluster, "plato")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(before, after);
}

#[tokio::test]
async fn deployment_template_change_rolls() {
    let (cluster, _controllers) = start("butterfly");
    let old_set = pods_of(&cluster, "synapse")[0]["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();

    cluster
        .store
        .modify(DEPLOYMENTS, NS, "synapse", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] =
                json!("-Xms1g -Xmx2g -XX:+UseG1GC");
        })
        .unwrap();
    // maxUnavailable 25% of 3 rounds down to 0: the rollout never drops
    // below 3 ready pods.
    let mut min_ready = usize::MAX;
    wait_until("synapse rolled out", || {
        min_ready = min_ready.min(
            pods_of(&cluster, "synapse")
                .iter()
                .filter(|p| is_ready(p))
                .count(),
        );
        let deployment = get(&cluster, DEPLOYMENTS, "synapse");
        deployment_rolled_out(&deployment) && int(&deployment["status"]["observedGeneration"]) == 2
    })
    .await;

    assert_eq!(min_ready, 3);
    let deployment = get(&cluster, DEPLOYMENTS, "synapse");
    assert_eq!(
        deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let pods = pods_of(&cluster, "synapse");
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_ne!(
            pod["metadata"]["ownerReferences"][0]["name"],
            old_set.as_str()
        );
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0]["value"],
            "-Xms1g -Xmx2g -XX:+UseG1GC"
        );
    }
    let new_set = pods[0]["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap();
    let progressing = condition(&deployment, "Progressing").unwrap();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    assert_eq!(
        progressing["message"],
        format!("ReplicaSet \"{new_set}\" has successfully progressed.")
    );
    assert_eq!(
        int(&get(&cluster, REPLICA_SETS, &old_set)["spec"]["replicas"]),
        0
    );
}

#[tokio::test]
async fn statefulset_scale_up_is_ordered() {
    let (cluster, _controllers) = start("butterfly");

    scale(&cluster, STATEFUL_SETS, "cassandra", 5);
    let mut order_violated = false;
    wait_until("cassandra at 5", || {
        let third_ready = cluster
            .store
            .get(PODS, NS, "cassandra-3")
            .is_some_and(|p| is_ready(&p));
        if cluster.store.get(PODS, NS, "cassandra-4").is_some() && !third_ready {
            order_violated = true;
        }
        stateful_set_rolled_out(&get(&cluster, STATEFUL_SETS, "cassandra"))
            && int(&get(&cluster, STATEFUL_SETS, "cassandra")["status"]["readyReplicas"]) == 5
    })
    .await;

    assert!(
        !order_violated,
        "cassandra-4 was created before cassandra-3 was Ready"
    );
    let pod = get(&cluster, PODS, "cassandra-4");
    assert_eq!(pod["spec"]["hostname"], "cassandra-4");
    assert_eq!(pod["spec"]["subdomain"], "cassandra");
    assert!(is_ready(&pod));
    assert!(condition(&pod, "Ready").unwrap()["lastTransitionTime"].is_string());
    let created: Vec<Value> = events(&cluster, "SuccessfulCreate");
    assert!(
        created
            .iter()
            .any(|e| e["message"] == "create Pod cassandra-4 in StatefulSet cassandra successful")
    );
}

#[tokio::test]
async fn statefulset_template_change_rolls_in_reverse_order() {
    let (cluster, _controllers) = start("butterfly");
    let old_revision = get(&cluster, STATEFUL_SETS, "kafka")["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();

    cluster
        .store
        .modify(STATEFUL_SETS, NS, "kafka", |s| {
            s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("apache/kafka:3.8.0");
        })
        .unwrap();
    let mut updated_order: Vec<String> = Vec::new();
    wait_until("kafka rolled out", || {
        for ordinal in 0..3 {
            let name = format!("kafka-{ordinal}");
            let updated = cluster.store.get(PODS, NS, &name).is_some_and(|p| {
                p["metadata"]["labels"]["controller-revision-hash"].as_str()
                    != Some(old_revision.as_str())
            });
            if updated && !updated_order.contains(&name) {
                updated_order.push(name);
            }
        }
        let set = get(&cluster, STATEFUL_SETS, "kafka");
        stateful_set_rolled_out(&set) && set["status"]["updateRevision"] != old_revision.as_str()
    })
    .await;

    assert_eq!(updated_order, ["kafka-2", "kafka-1", "kafka-0"]);
    let set = get(&cluster, STATEFUL_SETS, "kafka");
    assert_eq!(int(&set["status"]["updatedReplicas"]), 3);
    assert_eq!(
        get(&cluster, PODS, "kafka-0")["spec"]["containers"][0]["image"],
        "apache/kafka:3.8.0"
    );
}

#[tokio::test]
async fn nexus_fits_at_hpa_maximum() {
    let (cluster, _controllers) = start("butterfly");

    scale(&cluster, DEPLOYMENTS, "nexus", 20);
    wait_until("nexus rolled out at 20", || {
        deployment_rolled_out(&get(&cluster, DEPLOYMENTS, "nexus"))
    })
    .await;

    assert!(events(&cluster, "FailedScheduling").is_empty());
    let nodes: BTreeSet<String> = pods_of(&cluster, "nexus")
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes.len(), 3, "nexus pods spread over all nodes");
}

#[tokio::test]
async fn huge_scale_leaves_pods_pending_with_failed_scheduling() {
    let (cluster, _controllers) = start("butterfly");
    let expected = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: \
                    3 No preemption victims found for incoming pod.";

    for (name, replicas) in [("capsule", 12), ("odyssey-core", 15), ("perception", 15)] {
        scale(&cluster, DEPLOYMENTS, name, replicas);
    }
    let pending = || -> Vec<Value> {
        let (pods, _) = cluster.store.list(PODS, Some(NS));
        pods.into_iter()
            .filter(|p| {
                condition(p, "PodScheduled").is_some_and(|c| c["reason"] == "Unschedulable")
            })
            .collect()
    };
    wait_until("an unschedulable pod", || !pending().is_empty()).await;
    // The scheduler has bound all it can once no pod waits for it.
    wait_until("every pod scheduled or unschedulable", || {
        let (pods, _) = cluster.store.list(PODS, Some(NS));
        pods.iter().all(|p| condition(p, "PodScheduled").is_some())
    })
    .await;

    for pod in pending() {
        assert_eq!(pod["status"]["phase"], "Pending");
        assert!(pod["spec"]["nodeName"].is_null());
        assert_eq!(condition(&pod, "PodScheduled").unwrap()["status"], "False");
        assert_eq!(
            condition(&pod, "PodScheduled").unwrap()["message"],
            expected
        );
    }
    let failed = events(&cluster, "FailedScheduling");
    assert!(!failed.is_empty());
    let pending_uids: HashSet<String> = pending()
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    for event in &failed {
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["message"], expected);
        assert_eq!(event["source"]["component"], "default-scheduler");
        assert_eq!(event["reportingComponent"], "default-scheduler");
        assert_eq!(event["involvedObject"]["kind"], "Pod");
        assert!(pending_uids.contains(event["involvedObject"]["uid"].as_str().unwrap()));
    }
    // Retries bump the existing event instead of adding new ones.
    let first = failed[0]["metadata"]["name"].as_str().unwrap().to_string();
    wait_until("a repeated FailedScheduling", || {
        cluster
            .store
            .get(EVENTS, NS, &first)
            .is_some_and(|e| int(&e["count"]) >= 2)
    })
    .await;
    assert_eq!(events(&cluster, "FailedScheduling").len(), failed.len());
    let core = get(&cluster, DEPLOYMENTS, "odyssey-core");
    assert!(
        int(&core["status"]["availableReplicas"]) < 15
            || int(&get(&cluster, DEPLOYMENTS, "capsule")["status"]["availableReplicas"]) < 12
    );
}

#[test]
fn settle_stops_with_unschedulable_pods() {
    let cluster = Cluster::new(Timing::fast());
    scenario::load(&cluster, "butterfly").expect("scenario loads");
    for (name, replicas) in [("capsule", 12), ("odyssey-core", 15), ("perception", 15)] {
        scale(&cluster, DEPLOYMENTS, name, replicas);
    }

    controllers::settle(&cluster);

    let (pods, _) = cluster.store.list(PODS, Some(NS));
    let pending = pods
        .iter()
        .filter(|p| p["spec"]["nodeName"].is_null())
        .count();
    assert!(pending > 0);
    let failed = events(&cluster, "FailedScheduling");
    assert_eq!(failed.len(), pending);
    assert!(failed.iter().all(|e| int(&e["count"]) == 1));
}

#[tokio::test]
async fn hpa_reverts_replicas_outside_its_range() {
    let (cluster, _controllers) = start("butterfly");

    scale(&cluster, DEPLOYMENTS, "nexus", 25);
    scale(&cluster, DEPLOYMENTS, "synapse", 1);
    wait_until("nexus clamped to 20", || {
        int(&get(&cluster, DEPLOYMENTS, "nexus")["spec"]["replicas"]) == 20
    })
    .await;
    wait_until("synapse clamped to 2", || {
        int(&get(&cluster, DEPLOYMENTS, "synapse")["spec"]["replicas"]) == 2
    })
    .await;

    let messages: Vec<String> = events(&cluster, "SuccessfulRescale")
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(messages.contains(
        &"New size: 20; reason: Current number of replicas above Spec.MaxReplicas".to_string()
    ));
    assert!(messages.contains(
        &"New size: 2; reason: Current number of replicas below Spec.MinReplicas".to_string()
    ));
    let hpa = get(&cluster, HPAS, "nexus-hpa");
    assert_eq!(int(&hpa["status"]["desiredReplicas"]), 20);
    assert!(hpa["status"]["lastScaleTime"].is_string());

    // Inside the range the HPA leaves replicas alone.
    scale(&cluster, DEPLOYMENTS, "plato", 7);
    tokio::time::sleep(cluster.timing.hpa_interval * 3).await;
    assert_eq!(
        int(&get(&cluster, DEPLOYMENTS, "plato")["spec"]["replicas"]),
        7
    );
    let plato_hpa = get(&cluster, HPAS, "plato-hpa");
    assert_eq!(
        condition(&plato_hpa, "ScalingLimited").unwrap()["reason"],
        "DesiredWithinRange"
    );
    assert_eq!(
        plato_hpa["status"]["currentMetrics"][0]["resource"]["name"],
        "cpu"
    );
}

#[tokio::test]
async fn never_ready_app_pods_run_but_stay_unready() {
    let (cluster, _controllers) = start("butterfly");
    cluster
        .faults
        .with(|plan| plan.never_ready_apps.insert("plato".to_string()));

    scale(&cluster, DEPLOYMENTS, "plato", 3);
    wait_until("an Unhealthy event", || {
        !events(&cluster, "Unhealthy").is_empty()
    })
    .await;

    let pods = pods_of(&cluster, "plato");
    assert_eq!(pods.len(), 3);
    let unready: Vec<&Value> = pods.iter().filter(|p| !is_ready(p)).collect();
    assert_eq!(unready.len(), 1, "only the new pod is unready");
    let pod = unready[0];
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["status"]["containerStatuses"][0]["ready"], false);
    assert_eq!(pod["status"]["containerStatuses"][0]["started"], true);
    let deployment = get(&cluster, DEPLOYMENTS, "plato");
    assert!(!deployment_rolled_out(&deployment));
    assert_eq!(int(&deployment["status"]["unavailableReplicas"]), 1);
    let endpoints = get(&cluster, ENDPOINTS, "plato");
    assert_eq!(
        endpoints["subsets"][0]["notReadyAddresses"][0]["ip"],
        pod["status"]["podIP"]
    );
    assert_eq!(
        endpoints["subsets"][0]["addresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn node_deletion_reschedules_its_pods() {
    let (cluster, _controllers) = start("butterfly");
    let on_node_a = |cluster: &Cluster| -> usize {
        let (pods, _) = cluster.store.list(PODS, None);
        pods.iter()
            .filter(|p| p["spec"]["nodeName"] == "node-a")
            .count()
    };
    assert!(on_node_a(&cluster) > 0);

    cluster.store.delete(NODES, "", "node-a").unwrap();
    wait_until("no pods on node-a", || on_node_a(&cluster) == 0).await;
    wait_until("synapse ready on the other nodes", || {
        let pods = pods_of(&cluster, "synapse");
        pods.len() == 3 && pods.iter().all(is_ready)
    })
    .await;

    for pod in pods_of(&cluster, "synapse") {
        assert_ne!(pod["spec"]["nodeName"], "node-a");
    }
}

#[tokio::test]
async fn node_not_ready_evicts_its_pods() {
    let (cluster, _controllers) = start("butterfly");

    cluster
        .store
        .modify(NODES, "", "node-b", |n| {
            for condition in n["status"]["conditions"].as_array_mut().unwrap() {
                if condition["type"] == "Ready" {
                    condition["status"] = json!("Unknown");
                }
            }
        })
        .unwrap();
    wait_until("no pods on node-b", || {
        let (pods, _) = cluster.store.list(PODS, None);
        pods.iter().all(|p| p["spec"]["nodeName"] != "node-b")
    })
    .await;

    assert!(!events(&cluster, "TaintManagerEviction").is_empty());
    let node_names: HashSet<String> = metrics::node_metrics(&cluster)
        .iter()
        .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!node_names.contains("node-b"));
}

#[tokio::test]
async fn postgres_instances_follow_number_of_instances() {
    let (cluster, _controllers) = start("butterfly");

    cluster
        .store
        .modify(POSTGRESQLS, NS, "butterfly-postgres", |p| {
            p["spec"]["numberOfInstances"] = json!(3)
        })
        .unwrap();
    wait_until("three ready postgres instances", || {
        cluster
            .store
            .get(PODS, NS, "butterfly-postgres-2")
            .is_some_and(|p| is_ready(&p))
            && get(&cluster, POSTGRESQLS, "butterfly-postgres")["status"]["PostgresClusterStatus"]
                == "Running"
    })
    .await;

    let pod = get(&cluster, PODS, "butterfly-postgres-2");
    assert_eq!(pod["metadata"]["labels"]["application"], "spilo");
    assert_eq!(
        pod["metadata"]["labels"]["cluster-name"],
        "butterfly-postgres"
    );
    assert_eq!(pod["metadata"]["labels"]["spilo-role"], "replica");
}

#[tokio::test]
async fn pod_metrics_scale_with_replicas() {
    let (cluster, _controllers) = start("butterfly");
    let perception_cpu = |cluster: &Cluster| -> Vec<i64> {
        metrics::pod_metrics(cluster, Some(NS))
            .iter()
            .filter(|m| m["metadata"]["labels"]["app"] == "perception")
            .map(|m| {
                let cpu = m["containers"][0]["usage"]["cpu"].as_str().unwrap();
                cpu.strip_suffix('n').unwrap().parse::<i64>().unwrap() / 1_000_000
            })
            .collect()
    };

    let metrics = metrics::pod_metrics(&cluster, Some(NS));
    assert_eq!(metrics[0]["apiVersion"], "metrics.k8s.io/v1beta1");
    assert_eq!(metrics[0]["kind"], "PodMetrics");
    assert!(
        metrics[0]["containers"][0]["usage"]["memory"]
            .as_str()
            .unwrap()
            .ends_with("Ki")
    );
    // 1140m of demand over 3 pods is 380m each, within the ±6 % jitter.
    let before = perception_cpu(&cluster);
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|m| (357..=403).contains(m)), "{before:?}");

    scale(&cluster, DEPLOYMENTS, "perception", 6);
    wait_until("perception at 6", || {
        deployment_rolled_out(&get(&cluster, DEPLOYMENTS, "perception"))
    })
    .await;
    let after = perception_cpu(&cluster);
    assert_eq!(after.len(), 6);
    assert!(after.iter().all(|m| (178..=202).contains(m)), "{after:?}");

    let nodes = metrics::node_metrics(&cluster);
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["kind"], "NodeMetrics");
    assert!(nodes[0]["usage"]["cpu"].as_str().unwrap().ends_with('n'));
}

#[tokio::test]
async fn large_scenario_settles() {
    let (cluster, _controllers) = start("large:200");

    let (deployments, _) = cluster.store.list(DEPLOYMENTS, Some(NS));
    assert_eq!(deployments.len(), 200);
    assert!(deployments.iter().all(deployment_rolled_out));
    let (pods, _) = cluster.store.list(PODS, Some(NS));
    assert_eq!(pods.len(), 400);
    assert!(pods.iter().all(is_ready));
    let (nodes, _) = cluster.store.list(NODES, None);
    assert_eq!(nodes.len(), 5);
    let (budgets, _) = cluster.store.list(PDBS, Some(NS));
    assert_eq!(budgets.len(), 200);
    assert_eq!(
        int(&get(&cluster, PDBS, "svc-200-pdb")["status"]["disruptionsAllowed"]),
        1
    );
}

#[test]
fn unknown_scenario_lists_valid_names() {
    let cluster = Cluster::new(Timing::fast());
    let error = scenario::load(&cluster, "butterfly2")
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"butterfly\""), "{error}");
    assert!(error.contains("large:N"), "{error}");
    let error = scenario::load(&cluster, "large:0").unwrap_err().to_string();
    assert!(error.contains("invalid service count \"0\""), "{error}");
}
