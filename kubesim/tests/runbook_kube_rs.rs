//! The scaling runbook's operations through kube-rs against the in-process
//! [`kubesim::Sim`]: scale and wait for the rollout, the vertical resources
//! patch, exec into infrastructure pods, the HPA and Postgres patches, and
//! injected API faults on those writes.
//!
//! The kubectl forms of the same commands run in the integration-tests
//! package (`tests/tests/kubectl_runbook.rs`).

mod common;

use common::{NAMESPACE, WAIT, api_status, deployment, start};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{
    ApiResource, AttachParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

fn deployments(client: &Client) -> Api<Deployment> {
    Api::namespaced(client.clone(), NAMESPACE)
}

fn pods(client: &Client) -> Api<Pod> {
    Api::namespaced(client.clone(), NAMESPACE)
}

/// kubectl's test for a finished Deployment rollout: the controller has
/// seen the latest generation, and every replica is updated and available
/// with no old replica left.
fn rolled_out(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return false;
    };
    status.observed_generation >= deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) == desired
}

/// Waits, through a watch, until the Deployment `name` has rolled out.
async fn await_rollout(client: &Client, name: &str) -> Deployment {
    let finished = timeout(WAIT, await_condition(deployments(client), name, rolled_out))
        .await
        .unwrap_or_else(|_| panic!("{name} did not roll out within {WAIT:?}"))
        .expect("the watch behind await_condition runs");
    finished.unwrap_or_else(|| panic!("{name} was deleted while rolling out"))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Lists the pods matching `selector`; polls until there are `count`, all
/// Ready, for at most [`WAIT`].
async fn ready_pods(client: &Client, selector: &str, count: usize) -> Vec<Pod> {
    let api = pods(client);
    let params = ListParams::default().labels(selector);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = api.list(&params).await.expect("pods list").items;
        if listed.len() == count && listed.iter().all(is_ready) {
            return listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{selector}: expected {count} ready pods, have {} of which {} ready",
            listed.len(),
            listed.iter().filter(|p| is_ready(p)).count()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn patch_scale_then_watch_sees_rollout_finish() {
    let sim = start();
    let client = sim.client().unwrap();
    let api = deployments(&client);

    let patch = Patch::Merge(json!({"spec": {"replicas": 4}}));
    let scale = api
        .patch_scale("synapse", &PatchParams::default(), &patch)
        .await
        .expect("patching synapse's scale succeeds");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));

    let finished = await_rollout(&client, "synapse").await;
    let status = finished.status.expect("status");
    assert_eq!(status.ready_replicas, Some(4), "{status:?}");
    assert_eq!(status.available_replicas, Some(4), "{status:?}");
    ready_pods(&client, "app=synapse", 4).await;
}

/// Builds the shared test Deployment with an environment variable on its
/// application container, so the test can check that a patch keeps it.
fn two_container_deployment(name: &str) -> Deployment {
    let mut deployment = deployment(name, 2);
    let spec = deployment.spec.as_mut().expect("spec");
    let pod_spec = spec.template.spec.as_mut().expect("pod spec");
    pod_spec.containers[0].env = Some(vec![EnvVar {
        name: "JAVA_OPTS".into(),
        value: Some("-Xmx1g".into()),
        value_from: None,
    }]);
    deployment
}

#[tokio::test]
async fn runbook_resources_patch_changes_one_of_two_containers() {
    let sim = start();
    let client = sim.client().unwrap();
    let api = deployments(&client);
    let created = api
        .create(
            &PostParams::default(),
            &two_container_deployment("vertical"),
        )
        .await
        .expect("creating the test deployment succeeds");
    await_rollout(&client, "vertical").await;

    // The runbook's vertical scaling patch, aimed at the container "app".
    let patch = Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "resources": {
            "requests": {"cpu": "1", "memory": "4Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"}
        }
    }]}}}}));
    let patched = api
        .patch("vertical", &PatchParams::default(), &patch)
        .await
        .expect("the strategic patch is accepted");

    let before = serde_json::to_value(&created).unwrap();
    let after = serde_json::to_value(&patched).unwrap();
    let containers = |object: &Value| object["spec"]["template"]["spec"]["containers"].clone();
    let (old, new) = (containers(&before), containers(&after));
    assert_eq!(new.as_array().map(Vec::len), Some(2), "{new}");
    let expected = json!({
        "requests": {"cpu": "1", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"}
    });
    assert_eq!(new[0]["resources"], expected, "{new}");
    assert_eq!(new[0]["name"], "app");
    assert_eq!(new[0]["image"], old[0]["image"]);
    assert_eq!(new[0]["env"], old[0]["env"]);
    assert_eq!(new[1], old[1], "the sidecar is untouched");
    assert_eq!(
        patched.metadata.generation,
        created.metadata.generation.map(|g| g + 1),
        "a template change bumps the generation"
    );

    await_rollout(&client, "vertical").await;
    for pod in ready_pods(&client, "app=vertical", 2).await {
        let spec = serde_json::to_value(pod.spec.expect("pod spec")).unwrap();
        let name = pod.metadata.name.unwrap_or_default();
        assert_eq!(spec["containers"][0]["resources"], expected, "{name}");
        // Pods carry API defaults (imagePullPolicy and others) that the
        // template does not, so compare the sidecar field by field.
        let sidecar = &spec["containers"][1];
        assert_eq!(sidecar["image"], old[1]["image"], "{name}");
        assert_eq!(sidecar["resources"], old[1]["resources"], "{name}");
    }
}

/// Runs `command` in `pod` and returns its stdout and the status that the
/// API server sent on the exec status channel.
async fn exec(client: &Client, pod: &str, command: &[&str]) -> (String, Status) {
    let params = AttachParams::default().stderr(true);
    let mut process = pods(client)
        .exec(pod, command.to_vec(), &params)
        .await
        .unwrap_or_else(|error| panic!("exec {command:?} in {pod}: {error}"));
    let mut stdout = String::new();
    process
        .stdout()
        .expect("stdout requested")
        .read_to_string(&mut stdout)
        .await
        .expect("stdout is UTF-8");
    let status_channel = process.take_status().expect("status channel");
    let status = timeout(WAIT, status_channel)
        .await
        .expect("exec status within the timeout")
        .expect("the server sends an exec status");
    (stdout, status)
}

#[tokio::test]
async fn exec_nodetool_status_succeeds() {
    let sim = start();
    let client = sim.client().unwrap();

    // Nodes show UJ (joining) for their first `cassandra_join` after they
    // become Ready, which includes the scenario's own nodes after start.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (stdout, status) = exec(&client, "cassandra-0", &["nodetool", "status"]).await;
        assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
        let normal = stdout.lines().filter(|l| l.starts_with("UN ")).count();
        if normal == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "three Up/Normal nodes within {WAIT:?}:\n{stdout}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn exec_exit_code_reaches_status_channel() {
    let sim = start();
    let client = sim.client().unwrap();

    let (_, status) = exec(&client, "cassandra-0", &["sh", "-c", "exit 3"]).await;
    assert_eq!(status.status.as_deref(), Some("Failure"), "{status:?}");
    assert_eq!(
        status.reason.as_deref(),
        Some("NonZeroExitCode"),
        "{status:?}"
    );
    let causes = status
        .details
        .and_then(|d| d.causes)
        .expect("the status names the exit code");
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0].reason.as_deref(), Some("ExitCode"), "{causes:?}");
    assert_eq!(causes[0].message.as_deref(), Some("3"), "{causes:?}");
}

#[tokio::test]
async fn injected_faults_fail_scale_patch_without_change() {
    let sim = start();
    let client = sim.client_without_retry().unwrap();
    let api = deployments(&client);
    let patch = Patch::Merge(json!({"spec": {"replicas": 4}}));

    for (code, reason) in [
        (403, "Forbidden"),
        (409, "Conflict"),
        (429, "TooManyRequests"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ] {
        sim.cluster().faults.with(|plan| {
            plan.errors.push(kubesim::cluster::ErrorRule {
                verb: "patch".into(),
                path_contains: "/deployments/synapse/scale".into(),
                status: code,
                remaining: Some(1),
            })
        });
        let status = api_status(
            api.patch_scale("synapse", &PatchParams::default(), &patch)
                .await,
        );
        assert_eq!(status.code, code, "injected {code}");
        assert_eq!(status.reason, reason, "injected {code}");
        let replicas = api.get("synapse").await.unwrap().spec.unwrap().replicas;
        assert_eq!(
            replicas,
            Some(3),
            "the failed patch ({code}) changed nothing"
        );
    }

    // Every rule allowed one failure, so the next patch goes through.
    let scale = api
        .patch_scale("synapse", &PatchParams::default(), &patch)
        .await
        .expect("no fault left");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
}

#[tokio::test]
async fn hpa_strategic_patch_raises_max_replicas() {
    let sim = start();
    let client = sim.client().unwrap();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client, NAMESPACE);

    let patch = Patch::Strategic(json!({"spec": {"maxReplicas": 15}}));
    let patched = hpas
        .patch("synapse-hpa", &PatchParams::default(), &patch)
        .await
        .expect("the strategic patch of a built-in resource is accepted");
    let spec = patched.spec.expect("spec");
    assert_eq!(spec.max_replicas, 15);
    assert_eq!(spec.min_replicas, Some(2), "minReplicas kept");
    assert_eq!(spec.scale_target_ref.name, "synapse");
}

#[tokio::test]
async fn postgres_instances_need_merge_patch() {
    let sim = start();
    let client = sim.client().unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("acid.zalan.do", "v1", "postgresql"),
        "postgresqls",
    );
    let clusters: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let instances = json!({"spec": {"numberOfInstances": 3}});

    // The API server has no strategic merge patch for custom resources.
    let rejected = clusters
        .patch(
            "butterfly-postgres",
            &PatchParams::default(),
            &Patch::Strategic(instances.clone()),
        )
        .await;
    let status = api_status(rejected);
    assert_eq!(status.code, 415, "{status:?}");
    assert_eq!(status.reason, "UnsupportedMediaType", "{status:?}");
    let unchanged = clusters.get("butterfly-postgres").await.unwrap();
    assert_eq!(unchanged.data["spec"]["numberOfInstances"], 2);

    let patched = clusters
        .patch(
            "butterfly-postgres",
            &PatchParams::default(),
            &Patch::Merge(instances),
        )
        .await
        .expect("the merge patch is accepted");
    assert_eq!(patched.data["spec"]["numberOfInstances"], 3);
    let running = ready_pods(&client, "cluster-name=butterfly-postgres", 3).await;
    let names: Vec<String> = running
        .into_iter()
        .filter_map(|pod| pod.metadata.name)
        .collect();
    assert!(
        names.contains(&"butterfly-postgres-2".to_string()),
        "the third instance is butterfly-postgres-2: {names:?}"
    );
}
