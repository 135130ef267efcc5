//! The engine's request path against an in-process kubesim and a real
//! `redis-server`: concurrency of approvals, expiry, freeze, dry-run
//! rejection, change since preview, rollout timeout and resource fit.

use std::time::Duration;

use commands::coordination::testing::RedisServer;
use commands::engine::ReplyBody;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kubesim::Sim;
use kubesim::cluster::{ErrorRule, Timing};
use tokio::sync::mpsc;

mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_approvals_execute_once() {
    let sim = Sim::start("butterfly", Timing::fast()).expect("kubesim");
    let redis = RedisServer::start();
    let first = replica(&sim, &redis, config(), "replica-a").await;
    let second = replica(&sim, &redis, config(), "replica-b").await;
    let id = preview(&first, "oncall", "scale synapse 4").await;

    let (sender, mut receiver) = mpsc::channel(1024);
    let mut tasks = Vec::new();
    for n in 1..=50 {
        let engine = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let sender = sender.clone();
        let text = format!("approve {id}");
        tasks.push(tokio::spawn(async move {
            engine
                .handle(request(&format!("approver{n}"), &text), sender)
                .await;
        }));
    }
    for task in tasks {
        task.await.expect("approval task");
    }
    assert!(first.wait_idle(IDLE_TIMEOUT).await);
    assert!(second.wait_idle(IDLE_TIMEOUT).await);
    let replies = drain(&mut receiver);
    let all = texts(&replies);

    let results = replies
        .iter()
        .filter(|r| matches!(r.body, ReplyBody::Result { .. }))
        .count();
    assert_eq!(results, 1, "exactly one execution:\n{all}");
    assert_eq!(all.matches("is already approved").count(), 49, "{all}");
    assert!(
        all.contains("result true: synapse scaled from 3 to 4"),
        "{all}"
    );
    assert_eq!(replicas(&sim, "synapse").await, 4);

    let audit = first
        .coordinator()
        .read_audit(Some("synapse"), 100)
        .await
        .expect("audit");
    let started = audit
        .iter()
        .filter(|e| e.kind == commands::coordination::AuditKind::Started)
        .count();
    assert_eq!(started, 1, "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_after_expiry_changes_nothing() {
    let mut config = config();
    config.policy.approval_expiry = Duration::from_millis(500);
    let (sim, _redis, engine) = start(config).await;
    let id = preview(&engine, "oncall", "scale synapse 4").await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    let all = texts(&drain(&mut receiver));
    assert!(all.contains("expired"), "{all}");
    assert_eq!(replicas(&sim, "synapse").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_limits_requests_to_admins_with_two_approvals() {
    let (sim, _redis, engine) = start(config()).await;
    let (sender, mut receiver) = mpsc::channel(64);

    engine
        .handle(request("oncall", "freeze incident 42"), sender.clone())
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(
        reply.contains("may not do this"),
        "non-admin freeze: {reply}"
    );

    engine
        .handle(request("lead", "freeze incident 42"), sender.clone())
        .await;
    drain(&mut receiver);
    engine
        .handle(request("oncall", "scale synapse 4"), sender.clone())
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(reply.contains("frozen"), "requester during freeze: {reply}");

    let id = preview(&engine, "lead", "scale synapse 4").await;
    engine
        .handle(request("sre", &format!("approve {id}")), sender.clone())
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(
        reply.contains("approval 1 of 2"),
        "first approval during freeze: {reply}"
    );
    assert_eq!(replicas(&sim, "synapse").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_rejection_creates_no_request() {
    let (sim, _redis, engine) = start(config()).await;
    sim.cluster().faults.with(|plan| {
        plan.errors.push(ErrorRule {
            verb: "patch".to_string(),
            path_contains: "deployments/synapse/scale".to_string(),
            status: 403,
            remaining: Some(1),
        });
    });
    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("oncall", "scale synapse 4"), sender.clone())
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(reply.contains("in a dry run"), "{reply}");
    assert!(reply.contains("403"), "{reply}");
    let pending = engine.coordinator().list_pending().await.expect("pending");
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_since_preview_stops_the_procedure() {
    let (sim, _redis, engine) = start(config()).await;
    let id = preview(&engine, "oncall", "scale synapse 4").await;

    let api: Api<Deployment> = Api::namespaced(sim.client().expect("client"), "butterfly");
    let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": 5}}));
    api.patch_scale("synapse", &PatchParams::default(), &patch)
        .await
        .expect("scale by hand");

    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    let all = texts(&drain(&mut receiver));
    assert!(all.contains("changed since the preview"), "{all}");
    assert_eq!(replicas(&sim, "synapse").await, 5);
    let locks = engine.coordinator().list_locks().await.expect("locks");
    assert!(locks.is_empty(), "lock left behind: {locks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_timeout_reports_state_and_releases_lock() {
    let mut config = config();
    config.policy.rollout_timeout = Duration::from_secs(2);
    let (sim, _redis, engine) = start(config).await;
    never_ready(&sim, "synapse", true);
    let id = preview(&engine, "oncall", "scale synapse 4").await;
    let (sender, mut receiver) = mpsc::channel(256);
    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    let replies = drain(&mut receiver);
    let all = texts(&replies);
    assert!(all.contains("result false"), "{all}");
    assert!(all.contains("did not finish within 2s"), "{all}");
    assert!(all.contains("4 desired, 3 ready"), "{all}");
    let locks = engine.coordinator().list_locks().await.expect("locks");
    assert!(locks.is_empty(), "lock left behind: {locks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_reports_pods_that_do_not_fit() {
    let (sim, _redis, engine) = start(config()).await;
    let api: Api<Deployment> = Api::namespaced(sim.client().expect("client"), "butterfly");
    for (name, count) in [("capsule", 12), ("odyssey-core", 15)] {
        let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": count}}));
        api.patch_scale(name, &PatchParams::default(), &patch)
            .await
            .expect("fill the nodes");
    }
    // Wait until the controllers have created the pods, scheduled or not.
    for _ in 0..100 {
        let mut created = true;
        for name in ["capsule", "odyssey-core"] {
            let status = api
                .get(name)
                .await
                .expect("deployment")
                .status
                .unwrap_or_default();
            created &= status.replicas
                == api
                    .get(name)
                    .await
                    .expect("deployment")
                    .spec
                    .and_then(|s| s.replicas);
        }
        if created {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("oncall", "scale perception 15"), sender)
        .await;
    let all = texts(&drain(&mut receiver));
    assert!(all.contains("does NOT fit"), "{all}");
    assert!(all.contains("insufficient cpu"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_stops_request_waiting_for_lock() {
    let mut config = config();
    config.policy.rollout_timeout = Duration::from_secs(3);
    let (sim, _redis, engine) = start(config).await;
    never_ready(&sim, "synapse", true);
    let holder = preview(&engine, "oncall", "scale synapse 4").await;
    let queued = preview(&engine, "oncall", "scale plato 3").await;

    let (sender, mut receiver) = mpsc::channel(256);
    engine
        .handle(request("sre", &format!("approve {holder}")), sender.clone())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    engine
        .handle(request("sre", &format!("approve {queued}")), sender.clone())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    engine
        .handle(request("lead", "freeze incident 7"), sender.clone())
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);

    let all = texts(&drain(&mut receiver));
    assert!(
        all.contains("queued for lock"),
        "second request was not queued:\n{all}"
    );
    assert!(
        all.contains("changes were frozen"),
        "queued request ran during the freeze:\n{all}"
    );
    assert_eq!(replicas(&sim, "plato").await, 2);
    let locks = engine.coordinator().list_locks().await.expect("locks");
    assert!(locks.is_empty(), "lock left behind: {locks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_request_for_same_service_is_refused() {
    let (_sim, _redis, engine) = start(config()).await;
    let first = preview(&engine, "oncall", "scale synapse -1").await;

    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("oncall", "scale synapse —1"), sender.clone())
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(reply.contains(&format!("cancel {first}")), "{reply}");
    let pending = engine.coordinator().list_pending().await.expect("pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    // An invalid request gets its own error, not the pending one.
    engine
        .handle(request("oncall", "scale synapse 40"), sender.clone())
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(reply.contains("outside the safe range"), "{reply}");

    // Another requester may still ask for the same service.
    let second = preview(&engine, "sre", "scale synapse 4").await;
    assert_ne!(first, second);

    // Once the first request is withdrawn, its requester may ask again.
    engine
        .handle(
            request("oncall", &format!("cancel {first}")),
            sender.clone(),
        )
        .await;
    drain(&mut receiver);
    let third = preview(&engine, "oncall", "scale synapse 5").await;
    assert_ne!(first, third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_min_raise_moves_workload_after_approval() {
    let (sim, _redis, engine) = start(config()).await;
    let (sender, mut receiver) = mpsc::channel(256);
    engine
        .handle(request("oncall", "hpa synapse min 4"), sender.clone())
        .await;
    let replies = drain(&mut receiver);
    let preview_text = texts(&replies);
    let id = replies
        .iter()
        .find_map(|r| match &r.body {
            ReplyBody::Preview { request_id, impact } => {
                assert_eq!(impact.action, "hpa synapse-hpa minReplicas 2 → 4");
                assert_eq!(
                    impact.target, 4,
                    "preview names the replicas the HPA moves to"
                );
                Some(request_id.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no preview: {preview_text}"));

    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    let all = texts(&drain(&mut receiver));
    assert!(
        all.contains("result true: synapse-hpa bounds set to 4-12"),
        "{all}"
    );

    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(sim.client().expect("client"), "butterfly");
    let hpa = hpas.get("synapse-hpa").await.expect("hpa");
    assert_eq!(hpa.spec.and_then(|s| s.min_replicas), Some(4));
    assert_eq!(replicas(&sim, "synapse").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_bound_crossing_is_refused() {
    let (_sim, _redis, engine) = start(config()).await;
    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("oncall", "hpa synapse min 13"), sender)
        .await;
    let all = texts(&drain(&mut receiver));
    assert!(
        all.contains("would cross") || all.contains("outside the safe range"),
        "{all}"
    );
    let pending = engine.coordinator().list_pending().await.expect("pending");
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_on_service_without_hpa_says_so() {
    let (_sim, _redis, engine) = start(config()).await;
    let (sender, mut receiver) = mpsc::channel(64);
    engine
        .handle(request("oncall", "hpa cassandra max 5"), sender)
        .await;
    let reply = texts(&drain(&mut receiver));
    assert!(reply.contains("cassandra has no HPA"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_redis_stall_keeps_the_lock() {
    let mut config = config();
    // Renewals every 3 s with a 2 s command timeout: a 5 s stall fails at
    // least one of them while the lock is still valid in Redis.
    config.policy.lock_ttl = Duration::from_secs(9);
    let (sim, redis, engine) = start(config).await;
    never_ready(&sim, "synapse", true);
    let id = preview(&engine, "oncall", "scale synapse 4").await;
    let (sender, mut receiver) = mpsc::channel(256);
    engine
        .handle(request("sre", &format!("approve {id}")), sender)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while replicas(&sim, "synapse").await != 4 {
        assert!(tokio::time::Instant::now() < deadline, "never patched");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tokio::task::block_in_place(|| redis.pause(Duration::from_secs(5)));
    never_ready(&sim, "synapse", false);
    assert!(engine.wait_idle(IDLE_TIMEOUT).await);
    let all = texts(&drain(&mut receiver));
    assert!(all.contains("result true"), "{all}");
    assert!(!all.contains("lock was lost"), "{all}");
    assert!(!all.contains("could not be renewed"), "{all}");
}
