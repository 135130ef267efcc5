//! Delivery de-duplication, rate limits, cooldowns, the freeze and the audit
//! stream.

use std::time::Duration;

use tokio::time::sleep;

use crate::coordination::testing::Harness;
use crate::coordination::{AuditEntry, AuditKind, FreezeState, RateDecision, unix_now_ms};

pub async fn dedupe_accepts_first_delivery(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let ttl = Duration::from_millis(1000);
    assert!(coordinator.first_delivery("Ev123", ttl).await.unwrap());
    assert!(!coordinator.first_delivery("Ev123", ttl).await.unwrap());
    assert!(coordinator.first_delivery("Ev456", ttl).await.unwrap());

    sleep(ttl + Duration::from_millis(200)).await;
    assert!(
        coordinator.first_delivery("Ev123", ttl).await.unwrap(),
        "a delivery id is forgotten after its TTL"
    );
}

pub async fn notes_are_read_back_until_expiry(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let ttl = Duration::from_millis(1000);
    assert_eq!(coordinator.get_note("message:r1").await.unwrap(), None);
    coordinator
        .put_note("message:r1", "C1/1700000000.000100", ttl)
        .await
        .unwrap();
    coordinator
        .put_note("message:r1", "C1/1700000000.000200", ttl)
        .await
        .unwrap();
    assert_eq!(
        coordinator.get_note("message:r1").await.unwrap().as_deref(),
        Some("C1/1700000000.000200"),
        "a second write replaces the note"
    );
    sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(coordinator.get_note("message:r1").await.unwrap(), None);
}

pub async fn rate_limit_allows_then_limits(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let window = Duration::from_millis(1000);
    for _ in 0..3 {
        let decision = coordinator.check_rate("alice", 3, window).await.unwrap();
        assert_eq!(decision, RateDecision::Allowed);
    }
    let limited = coordinator.check_rate("alice", 3, window).await.unwrap();
    let RateDecision::Limited { retry_after } = limited else {
        panic!("expected Limited, got {limited:?}");
    };
    assert!(retry_after > Duration::ZERO, "{retry_after:?}");
    assert!(retry_after <= window, "{retry_after:?}");

    let other = coordinator.check_rate("bob", 3, window).await.unwrap();
    assert_eq!(other, RateDecision::Allowed, "keys are independent");

    sleep(retry_after + Duration::from_millis(100)).await;
    let after_wait = coordinator.check_rate("alice", 3, window).await.unwrap();
    assert_eq!(after_wait, RateDecision::Allowed);
}

pub async fn cooldown_counts_down(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    assert_eq!(
        coordinator.cooldown_remaining("synapse").await.unwrap(),
        None
    );

    let duration = Duration::from_millis(1000);
    coordinator
        .start_cooldown("synapse", duration)
        .await
        .unwrap();
    let remaining = coordinator.cooldown_remaining("synapse").await.unwrap();
    let remaining = remaining.expect("cooldown is running");
    assert!(remaining <= duration, "{remaining:?}");
    assert!(remaining > Duration::from_millis(500), "{remaining:?}");
    assert_eq!(
        coordinator.cooldown_remaining("sygnal").await.unwrap(),
        None
    );

    sleep(duration + Duration::from_millis(200)).await;
    assert_eq!(
        coordinator.cooldown_remaining("synapse").await.unwrap(),
        None
    );
}

pub async fn freeze_is_shared(harness: &Harness) {
    let first = harness.coordinator().await;
    let second = harness.coordinator().await;
    assert_eq!(second.freeze_state().await.unwrap(), None);
    assert!(!second.clear_freeze().await.unwrap());

    let freeze = FreezeState {
        reason: "incident INC-42 in progress".to_string(),
        by: "alice".to_string(),
        since: unix_now_ms(),
    };
    first.set_freeze(&freeze).await.unwrap();
    assert_eq!(second.freeze_state().await.unwrap(), Some(freeze));

    assert!(second.clear_freeze().await.unwrap());
    assert_eq!(first.freeze_state().await.unwrap(), None);
}

pub async fn audit_reads_newest_first(harness: &Harness) {
    let coordinator = harness.coordinator().await;
    let entries = [
        audit_entry(1, AuditKind::Requested, Some("synapse"), Some(7)),
        audit_entry(2, AuditKind::Freeze, None, None),
        audit_entry(3, AuditKind::Approved, Some("sygnal"), None),
        audit_entry(4, AuditKind::Succeeded, Some("synapse"), Some(8)),
    ];
    let mut ids = Vec::new();
    for entry in &entries {
        ids.push(coordinator.append_audit(entry).await.unwrap());
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        entries.len(),
        "entry ids are distinct: {ids:?}"
    );

    let all = coordinator.read_audit(None, 10).await.unwrap();
    let expected: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    assert_eq!(all, expected);

    let newest_two = coordinator.read_audit(None, 2).await.unwrap();
    assert_eq!(newest_two, expected[..2]);

    let synapse = coordinator.read_audit(Some("synapse"), 10).await.unwrap();
    assert_eq!(synapse, [entries[3].clone(), entries[0].clone()]);
    let newest_synapse = coordinator.read_audit(Some("synapse"), 1).await.unwrap();
    assert_eq!(newest_synapse, [entries[3].clone()]);
    assert!(
        coordinator
            .read_audit(Some("element"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(coordinator.read_audit(None, 0).await.unwrap().is_empty());
}

fn audit_entry(
    at_ms: u64,
    kind: AuditKind,
    service: Option<&str>,
    fencing_token: Option<u64>,
) -> AuditEntry {
    AuditEntry {
        at_ms,
        request_id: service.map(|_| format!("req{at_ms:03}")),
        kind,
        service: service.map(str::to_string),
        actor: "alice".to_string(),
        detail: format!("event {at_ms}: {kind}"),
        fencing_token,
    }
}
