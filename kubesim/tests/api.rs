//! kubesim's API through kube-rs: reads, writes, patches, subresources,
//! validation, errors and injected faults.

mod common;

use axum::http::{Request, header};
use common::{NAMESPACE, api_status, create_deployment, deployment, start};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Node};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn deployments(client: &kube::Client) -> Api<Deployment> {
    Api::namespaced(client.clone(), NAMESPACE)
}

/// Sends a raw request and returns status code and body.
async fn raw(client: &kube::Client, request: Request<Vec<u8>>) -> (u16, Value) {
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("request reaches kubesim");
    let code = response.status().as_u16();
    let bytes = http_body_util_collect(response.into_body()).await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, body)
}

async fn http_body_util_collect(body: kube::client::Body) -> Vec<u8> {
    axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
        .await
        .expect("response body is readable")
        .to_vec()
}

#[tokio::test]
async fn get_and_list_with_label_selector() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "alpha", 2).await;
    create_deployment(&client, "beta", 1).await;
    let api = deployments(&client);

    let alpha = api.get("alpha").await.unwrap();
    assert_eq!(alpha.spec.unwrap().replicas, Some(2));

    let selected = api
        .list(&ListParams::default().labels("app=alpha"))
        .await
        .unwrap();
    let names: Vec<String> = selected
        .items
        .iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["alpha"]);

    let set = api
        .list(&ListParams::default().labels("suite=kubesim-tests,app in (alpha,beta)"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 2);
    assert!(!set.metadata.resource_version.unwrap().is_empty());

    let by_name = api
        .list(&ListParams::default().fields("metadata.name=beta"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
}

#[tokio::test]
async fn list_pages_with_continue_token() {
    let sim = start();
    let client = sim.client().unwrap();
    for name in ["page-a", "page-b", "page-c"] {
        create_deployment(&client, name, 1).await;
    }
    let api = deployments(&client);
    let params = ListParams::default().labels("suite=kubesim-tests").limit(2);
    let first = api.list(&params).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = api
        .list(&params.clone().continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].metadata.name.as_deref(), Some("page-c"));
    assert!(
        second
            .metadata
            .continue_
            .as_deref()
            .unwrap_or("")
            .is_empty()
    );
}

#[tokio::test]
async fn not_found_is_a_status_object() {
    let sim = start();
    let client = sim.client().unwrap();
    let status = api_status(deployments(&client).get("missing").await);
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(status.message, "deployments.apps \"missing\" not found");
    let details = status.details.expect("details");
    assert_eq!(details.name, "missing");
    assert_eq!(details.group, "apps");
    assert_eq!(details.kind, "deployments");
}

#[tokio::test]
async fn create_existing_and_into_missing_namespace_fail() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "dup", 1).await;
    let again = deployments(&client)
        .create(&PostParams::default(), &deployment("dup", 1))
        .await;
    let status = api_status(again);
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "AlreadyExists");

    let elsewhere: Api<Deployment> = Api::namespaced(client.clone(), "no-such-namespace");
    let status = api_status(
        elsewhere
            .create(&PostParams::default(), &deployment("x", 1))
            .await,
    );
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"no-such-namespace\" not found");
}

#[tokio::test]
async fn patch_scale_sets_parent_replicas() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "scaled", 2).await;
    let api = deployments(&client);

    let scale = api.get_scale("scaled").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.unwrap().selector.as_deref(),
        Some("app=scaled")
    );

    let patch = Patch::Merge(json!({"spec": {"replicas": 5}}));
    let scaled = api
        .patch_scale("scaled", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    assert_eq!(
        api.get("scaled").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );

    let to_zero = Patch::Merge(json!({"spec": {"replicas": 0}}));
    let zero = api
        .patch_scale("scaled", &PatchParams::default(), &to_zero)
        .await
        .unwrap();
    assert_eq!(
        zero.spec.unwrap().replicas,
        None,
        "zero replicas are omitted from Scale"
    );
}

#[tokio::test]
async fn replace_scale_with_stale_version_conflicts() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "stale-scale", 2).await;
    let api = deployments(&client);
    let stale = api.get_scale("stale-scale").await.unwrap();
    api.patch_scale(
        "stale-scale",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    let status = api_status(
        api.replace_scale("stale-scale", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
}

#[tokio::test]
async fn replace_with_stale_resource_version_conflicts() {
    let sim = start();
    let client = sim.client().unwrap();
    // No controller writes ConfigMaps, so only this test changes the version.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let config: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "stale"}, "data": {"v": "1"}})).unwrap();
    let created = api.create(&PostParams::default(), &config).await.unwrap();
    let mut first = created.clone();
    first.data = Some([("v".to_string(), "2".to_string())].into());
    api.replace("stale", &PostParams::default(), &first)
        .await
        .unwrap();

    let mut second = created;
    second.data = Some([("v".to_string(), "3".to_string())].into());
    let status = api_status(api.replace("stale", &PostParams::default(), &second).await);
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
    assert_eq!(api.get("stale").await.unwrap().data.unwrap()["v"], "2");
}

#[tokio::test]
async fn dry_run_leaves_state_unchanged() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "dry", 2).await;
    let api = deployments(&client);
    let before = api.get("dry").await.unwrap();

    let patch = Patch::Merge(json!({"spec": {"replicas": 9}}));
    let preview = api
        .patch("dry", &PatchParams::default().dry_run(), &patch)
        .await
        .unwrap();
    assert_eq!(preview.spec.unwrap().replicas, Some(9));
    let scale_preview = api
        .patch_scale("dry", &PatchParams::default().dry_run(), &patch)
        .await
        .unwrap();
    assert_eq!(scale_preview.spec.unwrap().replicas, Some(9));
    let after = api.get("dry").await.unwrap();
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(2));

    let create = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&create, &deployment("dry-new", 1))
        .await
        .unwrap();
    assert!(api.get_opt("dry-new").await.unwrap().is_none());

    api.delete("dry", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert!(api.get_opt("dry").await.unwrap().is_some());
    assert_eq!(
        before.metadata.uid,
        api.get("dry").await.unwrap().metadata.uid,
        "the object survives a dry-run delete"
    );
}

#[tokio::test]
async fn strategic_patch_changes_one_container() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "strategic", 1).await;
    let api = deployments(&client);
    let patch = Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}
    ]}}}}));
    let patched = api
        .patch("strategic", &PatchParams::default(), &patch)
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    let app = &containers[0];
    assert_eq!(app.image.as_deref(), Some("registry.local/strategic:1.0"));
    let resources = app.resources.as_ref().unwrap();
    assert_eq!(resources.limits.as_ref().unwrap()["cpu"].0, "2");
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "250m");
    let sidecar = &containers[1];
    assert_eq!(sidecar.name, "sidecar");
    assert_eq!(sidecar.image.as_deref(), Some("registry.local/proxy:2.1"));
    assert!(sidecar.resources.as_ref().unwrap().limits.is_none());
}

#[tokio::test]
async fn json_patch_keeps_identity() {
    let sim = start();
    let client = sim.client().unwrap();
    let created = create_deployment(&client, "jsonpatch", 1).await;
    let ops = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
    ]);
    let request = Request::patch(format!(
        "/apis/apps/v1/namespaces/{NAMESPACE}/deployments/jsonpatch"
    ))
    .header(header::CONTENT_TYPE, "application/json-patch+json")
    .body(serde_json::to_vec(&ops).unwrap())
    .unwrap();
    let (code, patched) = raw(&client, request).await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["spec"]["replicas"], 4);
    assert_eq!(patched["metadata"]["labels"]["tier"], "web");
    assert_eq!(patched["metadata"]["uid"], json!(created.metadata.uid));

    let failing_test = json!([{"op": "test", "path": "/spec/replicas", "value": 99}]);
    let request = Request::patch(format!(
        "/apis/apps/v1/namespaces/{NAMESPACE}/deployments/jsonpatch"
    ))
    .header(header::CONTENT_TYPE, "application/json-patch+json")
    .body(serde_json::to_vec(&failing_test).unwrap())
    .unwrap();
    assert_eq!(raw(&client, request).await.0, 422);

    let rename = Patch::Merge(json!({"metadata": {"name": "other"}}));
    let status = api_status(
        deployments(&client)
            .patch("jsonpatch", &PatchParams::default(), &rename)
            .await,
    );
    assert_eq!(status.code, 400);
}

#[tokio::test]
async fn invalid_changes_are_rejected() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "checked", 2).await;
    let api = deployments(&client);

    let negative = Patch::Merge(json!({"spec": {"replicas": -1}}));
    let status = api_status(
        api.patch("checked", &PatchParams::default(), &negative)
            .await,
    );
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    let causes = status.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.replicas");

    let status = api_status(
        api.patch_scale("checked", &PatchParams::default(), &negative)
            .await,
    );
    assert_eq!(status.code, 422);

    let fractional = Patch::Merge(json!({"spec": {"replicas": 2.5}}));
    assert_eq!(
        api_status(
            api.patch("checked", &PatchParams::default(), &fractional)
                .await
        )
        .code,
        422
    );

    let mut mismatched = deployment("mismatched", 1);
    mismatched
        .spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap()
        .labels = Some([("app".to_string(), "other".to_string())].into());
    let status = api_status(api.create(&PostParams::default(), &mismatched).await);
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.template.metadata.labels"),
        "{}",
        status.message
    );

    assert_eq!(
        api.get("checked").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
}

#[tokio::test]
async fn status_subresource_and_main_resource_are_separate() {
    let sim = start();
    let client = sim.client().unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    assert!(configmaps.list(&ListParams::default()).await.is_ok());
    create_deployment(&client, "statusy", 1).await;
    let api = deployments(&client);

    let status_patch =
        Patch::Merge(json!({"status": {"observedGeneration": 77}, "spec": {"replicas": 6}}));
    let patched = api
        .patch_status("statusy", &PatchParams::default(), &status_patch)
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().observed_generation, Some(77));
    assert_eq!(
        patched.spec.unwrap().replicas,
        Some(1),
        "a status patch leaves spec alone"
    );

    let main_patch = Patch::Merge(json!({"status": {"observedGeneration": 1234}}));
    let patched = api
        .patch("statusy", &PatchParams::default(), &main_patch)
        .await
        .unwrap();
    assert_ne!(
        patched.status.and_then(|s| s.observed_generation),
        Some(1234)
    );
}

#[tokio::test]
async fn server_side_apply_creates_and_records_manager() {
    let sim = start();
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let applied = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"mode": "blue"},
    });
    let params = PatchParams::apply("kubesim-test").force();
    let created = api
        .patch("applied", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["mode"], "blue");
    let fields = created.metadata.managed_fields.unwrap();
    assert_eq!(fields[0].manager.as_deref(), Some("kubesim-test"));
    assert_eq!(fields[0].operation.as_deref(), Some("Apply"));

    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"mode": "green"}});
    let updated = api
        .patch("applied", &params, &Patch::Apply(&changed))
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["mode"], "green");
    assert_eq!(updated.metadata.managed_fields.unwrap().len(), 1);

    let request = Request::patch(format!("/api/v1/namespaces/{NAMESPACE}/configmaps/applied"))
        .header(header::CONTENT_TYPE, "application/apply-patch+yaml")
        .body(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n".to_vec())
        .unwrap();
    let (code, body) = raw(&client, request).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "fieldManager");
}

#[tokio::test]
async fn strategic_patch_of_custom_resource_is_unsupported() {
    let sim = start();
    let client = sim.client().unwrap();
    let request = Request::patch(format!(
        "/apis/acid.zalan.do/v1/namespaces/{NAMESPACE}/postgresqls/anything"
    ))
    .header(
        header::CONTENT_TYPE,
        "application/strategic-merge-patch+json",
    )
    .body(br#"{"spec":{"numberOfInstances":3}}"#.to_vec())
    .unwrap();
    let (code, body) = raw(&client, request).await;
    assert_eq!(code, 415);
    assert_eq!(body["reason"], "UnsupportedMediaType");
    assert_eq!(body["kind"], "Status");
}

#[tokio::test]
async fn table_lists_deployment_columns() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "tabled", 3).await;
    let request = Request::get(format!(
        "/apis/apps/v1/namespaces/{NAMESPACE}/deployments?labelSelector=app%3Dtabled"
    ))
    .header(
        header::ACCEPT,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .body(Vec::new())
    .unwrap();
    let (code, table) = raw(&client, request).await;
    assert_eq!(code, 200);
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        vec!["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    let row = &table["rows"][0];
    assert_eq!(row["cells"][0], "tabled");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "tabled");
}

#[tokio::test]
async fn delete_returns_status_and_removes_object() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "doomed", 1).await;
    let api = deployments(&client);
    let deleted = api
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let status = deleted
        .right()
        .expect("deployments are deleted with a Status");
    assert_eq!(status.details.unwrap().name, "doomed");
    assert!(api.get_opt("doomed").await.unwrap().is_none());
}

#[tokio::test]
async fn namespaces_are_listed() {
    let sim = start();
    let client = sim.client().unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let butterfly = namespaces.get(NAMESPACE).await.unwrap();
    assert_eq!(butterfly.metadata.name.as_deref(), Some(NAMESPACE));
}

#[tokio::test]
async fn injected_faults_reach_kube_as_api_errors() {
    let sim = start();
    let client = sim.client_without_retry().unwrap();
    create_deployment(&client, "faulty", 1).await;
    let api = deployments(&client);
    for (code, reason) in [
        (403, "Forbidden"),
        (409, "Conflict"),
        (429, "TooManyRequests"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ] {
        sim.cluster().faults.with(|plan| {
            plan.errors.push(kubesim::cluster::ErrorRule {
                verb: "get".into(),
                path_contains: "/deployments/faulty".into(),
                status: code,
                remaining: Some(1),
            })
        });
        let status = api_status(api.get("faulty").await);
        assert_eq!(status.code, code, "injected {code}");
        assert_eq!(status.reason, reason, "injected {code}");
        assert!(
            api.get("faulty").await.is_ok(),
            "the rule for {code} is used up after one request"
        );
    }
}

#[tokio::test]
async fn fault_admin_endpoint_adds_and_clears_rules() {
    let sim = start();
    let client = sim.client_without_retry().unwrap();
    create_deployment(&client, "admin", 1).await;
    let rule =
        json!({"error": {"verb": "patch", "path_contains": "/deployments/admin", "status": 503}});
    let request = Request::post("/kubesim/faults")
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&rule).unwrap())
        .unwrap();
    let (code, plan) = raw(&client, request).await;
    assert_eq!(code, 200, "{plan}");
    assert_eq!(plan["errors"][0]["status"], 503);

    let api = deployments(&client);
    let patch = Patch::Merge(json!({"spec": {"replicas": 2}}));
    assert_eq!(
        api_status(api.patch("admin", &PatchParams::default(), &patch).await).code,
        503
    );
    assert_eq!(
        api_status(api.patch("admin", &PatchParams::default(), &patch).await).code,
        503
    );

    let (code, _) = raw(
        &client,
        Request::delete("/kubesim/faults").body(Vec::new()).unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        api.patch("admin", &PatchParams::default(), &patch)
            .await
            .is_ok()
    );

    let bad = Request::post("/kubesim/faults")
        .body(br#"{"error": {"status": 418}}"#.to_vec())
        .unwrap();
    assert_eq!(raw(&client, bad).await.0, 400);
}

#[tokio::test]
async fn discovery_serves_both_forms() {
    let sim = start();
    let client = sim.client().unwrap();
    let aggregated = kube::discovery::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let legacy = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    for discovery in [aggregated, legacy] {
        let apps = discovery.get("apps").expect("apps group");
        let (deployments, capabilities) = apps
            .recommended_resources()
            .into_iter()
            .find(|(r, _)| r.plural == "deployments")
            .expect("deployments");
        assert_eq!(deployments.kind, "Deployment");
        assert!(capabilities.supports_operation(kube::discovery::verbs::PATCH));
        assert!(discovery.has_group("metrics.k8s.io"));
    }

    let request = Request::get("/apis").header(
        header::ACCEPT,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    );
    let response = client
        .send(request.body(kube::client::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );

    let (code, version) = raw(&client, Request::get("/version").body(Vec::new()).unwrap()).await;
    assert_eq!(code, 200);
    assert_eq!(version["minor"], "32");
    let (code, _) = raw(
        &client,
        Request::get("/openapi/v2").body(Vec::new()).unwrap(),
    )
    .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn injected_429_carries_retry_after() {
    let sim = start();
    let client = sim.client_without_retry().unwrap();
    sim.cluster().faults.with(|plan| {
        plan.errors.push(kubesim::cluster::ErrorRule {
            verb: "list".into(),
            path_contains: "/configmaps".into(),
            status: 429,
            remaining: Some(1),
        })
    });
    let request = Request::get(format!("/api/v1/namespaces/{NAMESPACE}/configmaps"))
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
}

#[tokio::test]
async fn latency_fault_delays_requests() {
    let sim = start();
    let client = sim.client().unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let latency = std::time::Duration::from_millis(300);
    sim.cluster().faults.with(|plan| plan.latency = latency);
    let started = std::time::Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= latency, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn node_removal_endpoint_deletes_node() {
    let sim = start();
    let client = sim.client().unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let name = nodes.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();

    let remove = || {
        Request::delete(format!("/kubesim/nodes/{name}"))
            .body(Vec::new())
            .unwrap()
    };
    let (code, status) = raw(&client, remove()).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["status"], "Success");
    assert!(nodes.get_opt(&name).await.unwrap().is_none());
    assert_eq!(raw(&client, remove()).await.0, 404);
}

#[tokio::test]
async fn endpoint_slices_follow_endpoints() {
    let sim = start();
    let client = sim.client().unwrap();
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), NAMESPACE);
    let served = endpoints
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.subsets.as_ref().is_some_and(|s| !s.is_empty()))
        .expect("the scenario has a service with endpoints");
    let service = served.metadata.name.unwrap();
    let ready: usize = served
        .subsets
        .unwrap()
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();

    let slices: Api<EndpointSlice> = Api::namespaced(client, NAMESPACE);
    let selector = format!("kubernetes.io/service-name={service}");
    let found = slices
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert!(!found.items.is_empty());
    let ready_in_slices = found
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    assert_eq!(ready_in_slices, ready);
}
