use serde_json::{Value, json};

use super::apply;
use crate::patch::PatchError;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "synapse", "namespace": "butterfly", "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "synapse"}},
                "spec": {
                    "containers": [
                        {
                            "name": "synapse",
                            "image": "butterfly/synapse:1.4.2",
                            "args": ["--mode", "server"],
                            "env": [
                                {"name": "SPRING_PROFILES_ACTIVE", "value": "prod"},
                                {"name": "JAVA_OPTS", "value": "-Xms1g -Xmx2g"},
                                {"name": "REDIS_HOST", "value": "redis"}
                            ],
                            "ports": [
                                {"containerPort": 8080, "name": "http"},
                                {"containerPort": 9090, "name": "metrics"}
                            ],
                            "volumeMounts": [
                                {"mountPath": "/config", "name": "config"},
                                {"mountPath": "/tmp", "name": "scratch"}
                            ],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "2Gi"},
                                "limits": {"cpu": "2", "memory": "4Gi"}
                            }
                        },
                        {"name": "envoy", "image": "envoyproxy/envoy:v1.30.1"}
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "synapse-config"}},
                        {"name": "scratch", "emptyDir": {}}
                    ],
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "butterfly"}]
                }
            }
        }
    })
}

fn patch_deployment(patch: Value) -> Value {
    apply("Deployment", &deployment(), &patch)
        .unwrap_or_else(|e| panic!("patch {patch} failed: {e}"))
}

fn pod_spec(object: &Value) -> &Value {
    &object["spec"]["template"]["spec"]
}

fn names(list: &Value, key: &str) -> Vec<Value> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[key].clone())
        .collect()
}

#[test]
fn runbook_resources_patch_keeps_other_fields() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "resources": {
            "requests": {"cpu": "1", "memory": "4Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"}
        }
    }]}}}}));

    let before = deployment();
    let containers = &pod_spec(&result)["containers"];
    assert_eq!(
        names(containers, "name"),
        vec![json!("synapse"), json!("envoy")]
    );

    let synapse = &containers[0];
    assert_eq!(
        synapse["resources"]["requests"],
        json!({"cpu": "1", "memory": "4Gi"})
    );
    assert_eq!(
        synapse["resources"]["limits"],
        json!({"cpu": "4", "memory": "8Gi"})
    );
    assert_eq!(synapse["image"], "butterfly/synapse:1.4.2");
    assert_eq!(synapse["env"], pod_spec(&before)["containers"][0]["env"]);
    assert_eq!(
        synapse["ports"],
        pod_spec(&before)["containers"][0]["ports"]
    );

    assert_eq!(containers[1], pod_spec(&before)["containers"][1]);
    assert_eq!(result["spec"]["replicas"], 3);
}

#[test]
fn containers_merge_by_name() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "envoy", "image": "envoyproxy/envoy:v1.31.0"},
        {"name": "log-shipper", "image": "fluent/fluent-bit:3.0"}
    ]}}}}));
    let containers = &pod_spec(&result)["containers"];
    // "synapse" is live-only and was before "envoy", so it stays first; the
    // new container follows the patch order.
    assert_eq!(
        names(containers, "name"),
        vec![json!("synapse"), json!("envoy"), json!("log-shipper")]
    );
    assert_eq!(containers[1]["image"], "envoyproxy/envoy:v1.31.0");
    assert_eq!(containers[0]["image"], "butterfly/synapse:1.4.2");
}

#[test]
fn new_element_goes_before_unnamed_live_elements() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "log-shipper", "image": "fluent/fluent-bit:3.0"}
    ]}}}}));
    assert_eq!(
        names(&pod_spec(&result)["containers"], "name"),
        vec![json!("log-shipper"), json!("synapse"), json!("envoy")]
    );
}

#[test]
fn env_merges_by_name() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "env": [{"name": "JAVA_OPTS", "value": "-Xms2g -Xmx4g"}]
    }]}}}}));
    let env = &pod_spec(&result)["containers"][0]["env"];
    assert_eq!(
        names(env, "name"),
        vec![
            json!("SPRING_PROFILES_ACTIVE"),
            json!("JAVA_OPTS"),
            json!("REDIS_HOST")
        ]
    );
    assert_eq!(env[1]["value"], "-Xms2g -Xmx4g");
    assert_eq!(env[0]["value"], "prod");
}

/// The shape `kubectl set env deployment/synapse JAVA_OPTS=...` sends: the
/// changed element plus the full order of both lists.
#[test]
fn kubectl_set_env_patch() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "synapse"}, {"name": "envoy"}],
        "containers": [{
            "$setElementOrder/env": [
                {"name": "SPRING_PROFILES_ACTIVE"},
                {"name": "JAVA_OPTS"},
                {"name": "REDIS_HOST"},
                {"name": "GC_LOG"}
            ],
            "env": [
                {"name": "JAVA_OPTS", "value": "-Xms2g -Xmx4g -XX:+UseG1GC"},
                {"name": "GC_LOG", "value": "true"}
            ],
            "name": "synapse"
        }]
    }}}}));
    let containers = &pod_spec(&result)["containers"];
    assert_eq!(
        names(containers, "name"),
        vec![json!("synapse"), json!("envoy")]
    );
    let env = &containers[0]["env"];
    assert_eq!(
        names(env, "name"),
        vec![
            json!("SPRING_PROFILES_ACTIVE"),
            json!("JAVA_OPTS"),
            json!("REDIS_HOST"),
            json!("GC_LOG")
        ]
    );
    assert_eq!(env[1]["value"], "-Xms2g -Xmx4g -XX:+UseG1GC");
    assert_eq!(containers[0]["image"], "butterfly/synapse:1.4.2");
    assert!(
        !containers[0]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with('$')),
        "directives must not be stored: {}",
        containers[0]
    );
}

#[test]
fn volumes_merge_by_name() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"volumes": [
        {"name": "config", "configMap": {"name": "synapse-config-v2"}}
    ]}}}}));
    let volumes = &pod_spec(&result)["volumes"];
    assert_eq!(
        names(volumes, "name"),
        vec![json!("config"), json!("scratch")]
    );
    assert_eq!(volumes[0]["configMap"]["name"], "synapse-config-v2");
}

#[test]
fn container_ports_merge_by_container_port() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "ports": [{"containerPort": 9090, "name": "prometheus"}]
    }]}}}}));
    let ports = &pod_spec(&result)["containers"][0]["ports"];
    assert_eq!(
        names(ports, "containerPort"),
        vec![json!(8080), json!(9090)]
    );
    assert_eq!(ports[1]["name"], "prometheus");
}

#[test]
fn service_ports_merge_by_port() {
    let service = json!({"kind": "Service", "spec": {"ports": [
        {"port": 80, "targetPort": 8080, "name": "http"},
        {"port": 9090, "targetPort": 9090, "name": "metrics"}
    ]}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 8081}]}});
    let result = apply("Service", &service, &patch).unwrap();
    let ports = &result["spec"]["ports"];
    assert_eq!(names(ports, "port"), vec![json!(80), json!(9090)]);
    assert_eq!(ports[0]["targetPort"], 8081);
    assert_eq!(ports[0]["name"], "http");
}

#[test]
fn volume_mounts_merge_by_mount_path() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "volumeMounts": [{"mountPath": "/tmp", "name": "scratch", "readOnly": false}]
    }]}}}}));
    let mounts = &pod_spec(&result)["containers"][0]["volumeMounts"];
    assert_eq!(
        names(mounts, "mountPath"),
        vec![json!("/config"), json!("/tmp")]
    );
    assert_eq!(mounts[1]["readOnly"], false);
    assert_eq!(mounts[0]["name"], "config");
}

#[test]
fn atomic_lists_are_replaced() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "spot", "operator": "Exists"}],
        "containers": [{"name": "synapse", "args": ["--mode", "worker"]}]
    }}}}));
    let spec = pod_spec(&result);
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "spot", "operator": "Exists"}])
    );
    assert_eq!(spec["containers"][0]["args"], json!(["--mode", "worker"]));
}

#[test]
fn hpa_metrics_are_replaced() {
    let hpa = json!({"kind": "HorizontalPodAutoscaler", "spec": {
        "minReplicas": 4, "maxReplicas": 12,
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}
        ]
    }});
    let patch = json!({"spec": {"maxReplicas": 15, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}
    ]}});
    let result = apply("HorizontalPodAutoscaler", &hpa, &patch).unwrap();
    assert_eq!(result["spec"]["maxReplicas"], 15);
    assert_eq!(result["spec"]["minReplicas"], 4);
    assert_eq!(result["spec"]["metrics"].as_array().unwrap().len(), 1);
}

#[test]
fn patch_replace_on_map_replaces_it() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "resources": {"$patch": "replace", "requests": {"cpu": "1"}}
    }]}}}}));
    let resources = &pod_spec(&result)["containers"][0]["resources"];
    assert_eq!(resources, &json!({"requests": {"cpu": "1"}}));
}

#[test]
fn patch_replace_in_list_replaces_list() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "env": [{"name": "ONLY", "value": "1"}, {"$patch": "replace"}]
    }]}}}}));
    let env = &pod_spec(&result)["containers"][0]["env"];
    assert_eq!(env, &json!([{"name": "ONLY", "value": "1"}]));
    assert_eq!(pod_spec(&result)["containers"].as_array().unwrap().len(), 2);
}

#[test]
fn patch_delete_removes_list_element() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "envoy", "$patch": "delete"}
    ]}}}}));
    assert_eq!(
        names(&pod_spec(&result)["containers"], "name"),
        vec![json!("synapse")]
    );
}

#[test]
fn patch_delete_removes_map() {
    let result =
        patch_deployment(json!({"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}}));
    assert_eq!(result["spec"]["strategy"], json!({"type": "RollingUpdate"}));
}

#[test]
fn patch_merge_is_default() {
    let result = patch_deployment(
        json!({"spec": {"strategy": {"$patch": "merge", "type": "RollingUpdate"}}}),
    );
    assert_eq!(result["spec"]["strategy"], deployment()["spec"]["strategy"]);
}

#[test]
fn null_deletes_key() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "synapse",
        "resources": {"limits": null}
    }]}}}}));
    let resources = &pod_spec(&result)["containers"][0]["resources"];
    assert_eq!(
        resources,
        &json!({"requests": {"cpu": "500m", "memory": "2Gi"}})
    );
}

#[test]
fn retain_keys_clears_unlisted() {
    let result = patch_deployment(json!({"spec": {"strategy": {
        "$retainKeys": ["type"],
        "type": "Recreate"
    }}}));
    assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_rejects_unlisted_patch_key() {
    let err = apply(
        "Deployment",
        &deployment(),
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::KeyNotRetained {
            path: "spec.strategy".into(),
            key: "rollingUpdate".into()
        }
    );
}

#[test]
fn set_element_order_reorders_without_changes() {
    let result = patch_deployment(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "envoy"}, {"name": "synapse"}]
    }}}}));
    assert_eq!(
        names(&pod_spec(&result)["containers"], "name"),
        vec![json!("envoy"), json!("synapse")]
    );
    assert_eq!(
        pod_spec(&result)["containers"][1],
        pod_spec(&deployment())["containers"][0]
    );
}

/// Live elements the directive does not name keep their place relative to
/// the named ones where the live list allows it.
#[test]
fn set_element_order_with_unnamed_live_elements() {
    let live = json!({"metadata": {"finalizers": ["c", "b", "d", "a", "e"]}});
    let patch =
        json!({"metadata": {"$setElementOrder/finalizers": ["a", "b"], "finalizers": ["a", "b"]}});
    let result = apply("Pod", &live, &patch).unwrap();
    assert_eq!(
        result["metadata"]["finalizers"],
        json!(["c", "d", "a", "b", "e"])
    );
}

#[test]
fn set_element_order_must_match_patch_order() {
    let err = apply(
        "Deployment",
        &deployment(),
        &json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "synapse"}, {"name": "envoy"}],
            "containers": [{"name": "envoy", "image": "x"}, {"name": "synapse", "image": "y"}]
        }}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::ElementOrderMismatch {
            path: "spec.template.spec".into(),
            field: "containers".into()
        }
    );
}

#[test]
fn finalizers_merge_as_set() {
    let result = patch_deployment(json!({"metadata": {"finalizers": ["b", "c"]}}));
    assert_eq!(result["metadata"]["finalizers"], json!(["a", "b", "c"]));
}

#[test]
fn delete_from_primitive_list() {
    let result =
        patch_deployment(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}));
    assert_eq!(result["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn conditions_merge_by_type() {
    let pod = json!({"kind": "Pod", "status": {"conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "False"}
    ]}});
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let result = apply("Pod", &pod, &patch).unwrap();
    assert_eq!(
        result["status"]["conditions"],
        json!([{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}])
    );
}

#[test]
fn missing_merge_key_is_named() {
    let err = apply(
        "Deployment",
        &deployment(),
        &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::MissingMergeKey {
            path: "spec.template.spec.containers".into(),
            key: "name"
        }
    );
}

#[test]
fn unknown_patch_directive_is_rejected() {
    let err = apply(
        "Deployment",
        &deployment(),
        &json!({"spec": {"$patch": "remove"}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::UnknownPatchDirective {
            path: "spec".into(),
            value: json!("remove")
        }
    );
}

#[test]
fn non_object_patch_is_rejected() {
    let err = apply("Deployment", &deployment(), &json!([1])).unwrap_err();
    assert_eq!(err, PatchError::StrategicNotObject { found: "array" });
}

#[test]
fn hpa_max_replicas_patch() {
    let hpa =
        json!({"kind": "HorizontalPodAutoscaler", "spec": {"minReplicas": 4, "maxReplicas": 12}});
    let result = apply(
        "HorizontalPodAutoscaler",
        &hpa,
        &json!({"spec": {"maxReplicas": 15}}),
    )
    .unwrap();
    assert_eq!(result["spec"], json!({"minReplicas": 4, "maxReplicas": 15}));
}
