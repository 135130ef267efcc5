//! Long-lived requests through kube-rs: watches, pod exec, logs and proxy.

mod common;

use std::pin::pin;

use common::{NAMESPACE, WAIT, api_status, create_deployment, start};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{AttachParams, ListParams, LogParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

fn deployments(client: &kube::Client) -> Api<Deployment> {
    Api::namespaced(client.clone(), NAMESPACE)
}

/// Name of a Running pod of the scenario.
async fn running_pod(client: &kube::Client) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let running = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    running
        .items
        .into_iter()
        .next()
        .expect("the scenario has a Running pod")
}

/// Waits for the watcher to report `replicas` for the deployment.
async fn expect_replicas<S>(stream: &mut S, name: &str, replicas: i32)
where
    S: futures::Stream<Item = Result<watcher::Event<Deployment>, watcher::Error>> + Unpin,
{
    let found = timeout(WAIT, async {
        while let Some(event) = stream.try_next().await.unwrap() {
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event
                && d.metadata.name.as_deref() == Some(name)
                && d.spec.as_ref().and_then(|s| s.replicas) == Some(replicas)
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "watcher saw {name} with {replicas} replicas"
    );
}

#[tokio::test]
async fn watcher_sees_changes() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "watched", 1).await;
    let api = deployments(&client);
    let mut stream = pin!(watcher(
        api.clone(),
        watcher::Config::default().labels("app=watched")
    ));
    expect_replicas(&mut stream, "watched", 1).await;

    let patch = Patch::Merge(json!({"spec": {"replicas": 7}}));
    api.patch("watched", &PatchParams::default(), &patch)
        .await
        .unwrap();
    expect_replicas(&mut stream, "watched", 7).await;
}

#[tokio::test]
async fn streaming_list_watcher_sees_changes() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "streamed", 2).await;
    let api = deployments(&client);
    let config = watcher::Config::default()
        .labels("app=streamed")
        .streaming_lists();
    let mut stream = pin!(watcher(api.clone(), config));
    expect_replicas(&mut stream, "streamed", 2).await;

    let patch = Patch::Merge(json!({"spec": {"replicas": 3}}));
    api.patch("streamed", &PatchParams::default(), &patch)
        .await
        .unwrap();
    expect_replicas(&mut stream, "streamed", 3).await;
}

#[tokio::test]
async fn watch_sends_initial_events_then_changes_and_deletes() {
    let sim = start();
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let config = |name: &str, tier: &str| {
        serde_json::from_value::<ConfigMap>(
            json!({"metadata": {"name": name, "labels": {"tier": tier}}}),
        )
        .unwrap()
    };
    api.create(&Default::default(), &config("first", "web"))
        .await
        .unwrap();

    let params = WatchParams::default().labels("tier=web").timeout(5);
    let mut events = pin!(api.watch(&params, "0").await.unwrap());
    let first = timeout(WAIT, events.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(&first, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("first")),
        "{first:?}"
    );

    api.create(&Default::default(), &config("second", "web"))
        .await
        .unwrap();
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"tier": "batch"}}}));
    api.patch("first", &PatchParams::default(), &relabel)
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        match timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(c) => seen.push(format!("ADDED {}", c.metadata.name.unwrap())),
            WatchEvent::Deleted(c) => seen.push(format!("DELETED {}", c.metadata.name.unwrap())),
            WatchEvent::Modified(c) => seen.push(format!("MODIFIED {}", c.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(
        seen,
        vec!["ADDED second", "DELETED first"],
        "leaving the selector is a deletion"
    );
}

#[tokio::test]
async fn watch_sends_bookmarks_and_ends_at_timeout() {
    let sim = start();
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let version = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = WatchParams::default().timeout(3);
    let events: Vec<_> = timeout(
        WAIT,
        api.watch(&params, &version)
            .await
            .unwrap()
            .collect::<Vec<_>>(),
    )
    .await
    .expect("the watch ends after timeoutSeconds");
    let bookmark = events
        .iter()
        .find_map(|e| match e {
            Ok(WatchEvent::Bookmark(b)) => Some(b.metadata.resource_version.clone()),
            _ => None,
        })
        .expect("a bookmark within the watch");
    assert!(bookmark.parse::<u64>().unwrap() >= version.parse::<u64>().unwrap());
}

#[tokio::test]
async fn watch_from_expired_version_reports_410() {
    let sim = start();
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let store = &sim.cluster().store;
    let old = store.resource_version();
    store
        .create(
            "/v1/configmaps",
            NAMESPACE,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn"}}),
        )
        .unwrap();
    for i in 0..=kubesim::store::EVENT_HISTORY {
        store
            .modify("/v1/configmaps", NAMESPACE, "churn", |c| {
                c["data"] = json!({"i": i.to_string()})
            })
            .unwrap();
    }
    let mut events = pin!(
        api.watch(&WatchParams::default(), &old.to_string())
            .await
            .unwrap()
    );
    let first = timeout(WAIT, events.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn dropped_watches_close_after_initial_events() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "dropped", 1).await;
    sim.cluster().faults.with(|plan| plan.drop_watches = true);
    let api = deployments(&client);
    let params = WatchParams::default().labels("app=dropped");
    let events: Vec<_> = timeout(
        WAIT,
        api.watch(&params, "0").await.unwrap().collect::<Vec<_>>(),
    )
    .await
    .expect("the dropped watch ends");
    assert_eq!(events.len(), 1, "only the initial ADDED event arrives");
}

#[tokio::test]
async fn exec_reports_exit_codes() {
    let sim = start();
    let client = sim.client().unwrap();
    let pod = running_pod(&client).await;
    let name = pod.metadata.name.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);

    let params = AttachParams::default().stderr(true);
    let mut ok = pods.exec(&name, ["echo", "hello"], &params).await.unwrap();
    let mut output = String::new();
    ok.stdout()
        .unwrap()
        .read_to_string(&mut output)
        .await
        .unwrap();
    let status = timeout(WAIT, ok.take_status().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));
    assert!(!output.is_empty());

    let mut failing = pods.exec(&name, ["false"], &params).await.unwrap();
    let status = timeout(WAIT, failing.take_status().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = status.details.unwrap().causes.unwrap();
    assert_eq!(causes[0].message.as_deref(), Some("1"));
}

#[tokio::test]
async fn exec_into_missing_pod_or_without_upgrade_fails() {
    let sim = start();
    let client = sim.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let missing = pods
        .exec("no-such-pod", ["true"], &AttachParams::default())
        .await;
    assert_eq!(api_status(missing.map(|_| ())).code, 404);

    let name = running_pod(&client).await.metadata.name.unwrap();
    let request = axum::http::Request::get(format!(
        "/api/v1/namespaces/{NAMESPACE}/pods/{name}/exec?command=true&stdout=true"
    ))
    .header("Upgrade", "SPDY/3.1")
    .header("Connection", "Upgrade")
    .body(kube::client::Body::empty())
    .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn logs_honour_tail_lines() {
    let sim = start();
    let client = sim.client().unwrap();
    let pod = running_pod(&client).await;
    let name = pod.metadata.name.unwrap();
    let container = pod.spec.unwrap().containers[0].name.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let params = LogParams {
        container: Some(container.clone()),
        ..LogParams::default()
    };
    // Startup lines keep appearing for a few seconds after the pod starts,
    // so the tail is compared with the log read before and after it.
    let before = pods.logs(&name, &params).await.unwrap();
    let tail = pods
        .logs(
            &name,
            &LogParams {
                tail_lines: Some(1),
                ..params.clone()
            },
        )
        .await
        .unwrap();
    let after = pods.logs(&name, &params).await.unwrap();
    let before: Vec<&str> = before.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    assert!(!before.is_empty());
    assert!(after.starts_with(&before), "the log only grows");
    assert_eq!(tail.lines().count(), 1);
    let tail_line = tail.lines().next().unwrap();
    let position = after
        .iter()
        .rposition(|line| *line == tail_line)
        .unwrap_or_else(|| panic!("tail line {tail_line:?} is not in the log"));
    assert!(
        position + 1 >= before.len(),
        "tail line {tail_line:?} is older than the last line read before it"
    );
}

#[tokio::test]
async fn pod_proxy_reaches_readiness_endpoint() {
    let sim = start();
    let client = sim.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let running = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    // A pod whose readiness probe is an HTTP GET, which returns 200 on a Ready pod.
    let (name, port, path) = running
        .items
        .iter()
        .find_map(|pod| {
            let container = &pod.spec.as_ref()?.containers[0];
            let probe = container.readiness_probe.as_ref()?.http_get.as_ref()?;
            let port = match &probe.port {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port) => *port,
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(_) => {
                    return None;
                }
            };
            Some((pod.metadata.name.clone()?, port, probe.path.clone()?))
        })
        .expect("the scenario has a pod with an HTTP readiness probe");

    let request = axum::http::Request::get(format!(
        "/api/v1/namespaces/{NAMESPACE}/pods/{name}:{port}/proxy{path}"
    ))
    .body(kube::client::Body::empty())
    .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let missing = axum::http::Request::get(format!(
        "/api/v1/namespaces/{NAMESPACE}/pods/no-such-pod:{port}/proxy{path}"
    ))
    .body(kube::client::Body::empty())
    .unwrap();
    assert_eq!(client.send(missing).await.unwrap().status().as_u16(), 404);
}
