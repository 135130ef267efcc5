//! `scalebot serve` with Slack in HTTP mode and in Socket Mode, against
//! kubesim, a real `redis-server` and the fake Slack Web API. Requests are
//! signed as Slack signs them, and every effect is checked through the
//! fake's records and kubectl.

use std::time::Duration;

use commands::coordination::{AuditEntry, AuditKind, Coordinator, unix_now_ms};
use integration_tests::fake_slack::{
    self, BOT_TOKEN, FakeSlack, SIGNATURE_HEADER, StoredMessage, TIMESTAMP_HEADER,
};
use integration_tests::slack_bot::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_scale_then_button_approval_scales_synapse() {
    let setup = start("http").await;
    let before = setup.replicas("synapse");
    assert_eq!(before, "3");

    let (status, _) = setup
        .slash(REQUESTER, "/scale", "synapse 4", "1001.1.a")
        .await;
    assert_eq!(status, 200);
    let preview = setup.preview().await;
    let preview_text = preview.blocks.to_string();
    assert_eq!(preview.blocks[0]["type"], "header");
    assert!(preview_text.contains("3 → 4"), "{preview_text}");
    for label in [
        "Replicas",
        "HPA",
        "Fit",
        "PDB",
        "Lock",
        "Approvals needed",
        "Expires",
        "Steps",
    ] {
        assert!(
            preview_text.contains(label),
            "preview lacks {label}: {preview_text}"
        );
    }
    assert!(preview_text.contains("scalebot_reject"), "{preview_text}");

    let (status, _) = setup
        .click(APPROVER, &preview, "scalebot_approve", "2001.1.a")
        .await;
    assert_eq!(status, 200);
    let update = setup
        .fake
        .wait_for_call(
            "chat.update",
            |call| call.params["ts"] == preview.ts.as_str(),
            SOON,
        )
        .await;
    assert!(update.ok(), "{}", update.response);
    let updated = update.params["blocks"].to_string();
    assert!(
        !updated.contains("scalebot_approve"),
        "buttons stay after approval: {updated}"
    );
    assert!(updated.contains(APPROVER), "approver not shown: {updated}");

    setup.wait_thread(&preview, "done", PROCEDURE).await;
    assert_eq!(setup.replicas("synapse"), "4");
    assert_no_slack_errors(&setup.fake);

    let get = |path: &'static str| {
        let url = format!("{}{path}", setup.bot.url);
        let http = setup.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("scalebot_slack_events_total{kind=\"command\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scalebot_slack_api_calls_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_flow_shares_file_in_thread() {
    let fake = FakeSlack::start().await;
    let web =
        adapters::slack::web::Web::new(&fake.api_url(), &adapters::secret::Secret::new(BOT_TOKEN))
            .unwrap();
    let content = "synapse-7d4b9c-x2x Running node-a\n".repeat(600);
    web.upload_text(
        CHANNEL,
        Some("1700000000.000100"),
        "pods.txt",
        "pods",
        &content,
    )
    .await
    .unwrap();
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].content.as_deref(), Some(content.as_bytes()));
    let completed = uploads[0].completed.as_ref().expect("upload completed");
    assert_eq!(completed.channel.as_deref(), Some(CHANNEL));
    assert_eq!(completed.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_no_slack_errors(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_replayed_requests_change_nothing() {
    let setup = start("http").await;
    let body = fake_slack::slash_command_form(
        "/scale",
        "synapse 5",
        REQUESTER,
        CHANNEL,
        "3001.1.a",
        &setup.fake.response_url("3001"),
    );

    let (status, _) = setup
        .post_signed_with(
            "/slack/commands",
            &body,
            "not-the-secret",
            fake_slack::now_timestamp(),
        )
        .await;
    assert_eq!(status, 401, "forged signature");
    let (status, _) = setup
        .post_raw("/slack/commands", &body, "v0=", fake_slack::now_timestamp())
        .await;
    assert_eq!(status, 401, "empty signature");
    let stale = fake_slack::now_timestamp() - 6 * 60;
    let (status, _) = setup
        .post_signed_with("/slack/commands", &body, SECRET, stale)
        .await;
    assert_eq!(status, 401, "six-minute-old timestamp");

    // The same signed request twice: the copy is acknowledged and dropped.
    let timestamp = fake_slack::now_timestamp();
    let signature = fake_slack::sign(SECRET, timestamp, &body);
    let (first, _) = setup
        .post_raw("/slack/commands", &body, &signature, timestamp)
        .await;
    let (second, _) = setup
        .post_raw("/slack/commands", &body, &signature, timestamp)
        .await;
    assert_eq!((first, second), (200, 200));
    let preview = setup.preview().await;

    // A re-signed copy with the same trigger id is a redelivery: dropped too.
    let (third, _) = setup.post_signed("/slack/commands", &body).await;
    assert_eq!(third, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let previews = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| approve_value(&call.params).is_some())
        .count();
    assert_eq!(previews, 1, "one preview for one command");

    // A forged click changes nothing either.
    let payload = fake_slack::block_actions_payload(
        APPROVER,
        CHANNEL,
        &preview.ts,
        "scalebot_approve",
        &preview.request_id,
        &setup.fake.response_url("4001"),
        "4001.1.a",
    );
    let form = fake_slack::block_actions_form(&payload);
    let (status, _) = setup
        .post_signed_with(
            "/slack/interactions",
            &form,
            "not-the-secret",
            fake_slack::now_timestamp(),
        )
        .await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        setup.fake.calls_to("chat.update").is_empty(),
        "forged click decided"
    );
    assert_eq!(setup.replicas("synapse"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_and_outsider_clicks_leave_request_pending() {
    let setup = start("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "5001.1.a")
        .await;
    let preview = setup.preview().await;

    setup
        .click(REQUESTER, &preview, "scalebot_approve", "5002.1.a")
        .await;
    setup
        .wait_ephemeral(REQUESTER, "another approver must approve")
        .await;
    setup
        .click(OUTSIDER, &preview, "scalebot_approve", "5003.1.a")
        .await;
    setup.wait_ephemeral(OUTSIDER, "may not approve").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        setup.fake.calls_to("chat.update").is_empty(),
        "request was decided"
    );
    assert_eq!(setup.replicas("synapse"), "3");

    // A member of the approver user group may approve.
    setup
        .click(GROUP_MEMBER, &preview, "scalebot_approve", "5004.1.a")
        .await;
    setup.wait_thread(&preview, "done", PROCEDURE).await;
    assert_eq!(setup.replicas("synapse"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clicks_and_retries_execute_once() {
    let setup = start("http").await;
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "6001.1.a")
        .await;
    let preview = setup.preview().await;

    let payload = fake_slack::block_actions_payload(
        APPROVER,
        CHANNEL,
        &preview.ts,
        "scalebot_approve",
        &preview.request_id,
        &setup.fake.response_url("6002"),
        "6002.1.a",
    );
    let form = fake_slack::block_actions_form(&payload);
    let (a, b, retry) = tokio::join!(
        setup.click(APPROVER, &preview, "scalebot_approve", "6003.1.a"),
        setup.click(APPROVER2, &preview, "scalebot_approve", "6004.1.a"),
        setup.post_signed("/slack/interactions", &form),
    );
    assert_eq!((a.0, b.0, retry.0), (200, 200, 200));
    // The same click delivered again with a new signature.
    setup.post_signed("/slack/interactions", &form).await;

    setup.wait_thread(&preview, "done", PROCEDURE).await;
    let replies: Vec<StoredMessage> = setup.thread(&preview).into_iter().skip(1).collect();
    let decided = replies
        .iter()
        .map(message_text)
        .filter(|text| text.contains("approved by"))
        .count();
    assert_eq!(decided, 1, "one approval decided the request");
    let results = replies
        .iter()
        .map(message_text)
        .filter(|text| text.contains("done:"))
        .count();
    assert_eq!(results, 1, "one execution: {replies:#?}");
    let refusals = setup
        .fake
        .ephemeral()
        .into_iter()
        .filter(|m| {
            m.text
                .as_deref()
                .unwrap_or_default()
                .contains("already approved")
        })
        .count();
    assert!(
        refusals >= 1,
        "the losing clicks were told: {:#?}",
        setup.fake.ephemeral()
    );
    assert_eq!(setup.replicas("synapse"), "4");

    let coordinator = Coordinator::redis(&setup.redis.url(), "scalebot:")
        .await
        .unwrap();
    let started = coordinator
        .read_audit(Some("synapse"), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == AuditKind::Started)
        .count();
    assert_eq!(started, 1, "audit shows one started procedure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_output_is_delivered_without_slack_errors() {
    let setup = start("http").await;
    let coordinator = Coordinator::redis(&setup.redis.url(), "scalebot:")
        .await
        .unwrap();
    for number in 0..20 {
        let detail = format!(
            "note {number:02}: {}",
            "pod synapse-7d4b9c-x2x ready on node-2; ".repeat(7)
        );
        coordinator
            .append_audit(&AuditEntry {
                at_ms: unix_now_ms(),
                request_id: Some(format!("seed{number:02}")),
                kind: AuditKind::Succeeded,
                service: Some("synapse".to_string()),
                actor: "scalebot".to_string(),
                detail,
                fencing_token: None,
            })
            .await
            .unwrap();
    }

    let (status, body) = setup
        .slash(REQUESTER, "/scalebot", "history synapse", "7001.1.a")
        .await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + SOON;
    let delivered = loop {
        let mut delivered = body.clone();
        for message in setup.fake.ephemeral() {
            delivered.push_str(message.text.as_deref().unwrap_or_default());
        }
        if (0..20).all(|n| delivered.contains(&format!("note {n:02}"))) {
            break delivered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history not fully delivered; got {} characters\nbot log:\n{}",
            delivered.len(),
            setup.bot.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(delivered.chars().count() > 5000, "{}", delivered.len());
    assert_no_slack_errors(&setup.fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_post_is_retried_not_dropped() {
    let setup = start("http").await;
    setup.fake.rate_limit_next("chat.postMessage", 1);
    setup
        .slash(REQUESTER, "/scale", "synapse 4", "8001.1.a")
        .await;
    let preview = setup.preview().await;
    let limited = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| call.status == 429)
        .count();
    assert_eq!(limited, 1, "the first post was rate limited");
    assert!(!preview.request_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_counts_get_an_ephemeral_error() {
    let setup = start("http").await;
    let bad = [
        "synapse 0",
        "synapse O",
        "synapse --1",
        "synapse -5",
        "synapse 1e3",
        "synapse —2",
        "synapsis 4",
    ];
    for (number, text) in bad.iter().enumerate() {
        let trigger = format!("900{number}.1.a");
        let (status, body) = setup.slash(REQUESTER, "/scale", text, &trigger).await;
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{text}: no ephemeral answer in the response: {body:?}"));
        assert_eq!(answer["response_type"], "ephemeral", "{text}: {body}");
        assert!(
            answer["text"].as_str().is_some_and(|t| t.len() > 10),
            "{text}: {body}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let previews = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| approve_value(&call.params).is_some())
        .count();
    assert_eq!(previews, 0, "bad counts created requests");
    assert_eq!(setup.replicas("synapse"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_acks_handles_and_reconnects() {
    let setup = start("socket").await;
    let first = setup.fake.next_socket_connection(SOON).await;

    let payload = fake_slack::slash_command_payload(
        "/scale",
        "synapse 4",
        REQUESTER,
        CHANNEL,
        "10001.1.a",
        &setup.fake.response_url("10001"),
    );
    let envelope = first.send_slash_command(payload).await;
    let ack = first.wait_ack(&envelope, SOON).await;
    assert_eq!(ack["envelope_id"], envelope.as_str());
    let preview = setup.preview().await;

    // Slack asks for a new connection: the bot opens one.
    first.send_disconnect("refresh_requested").await;
    let second = setup.fake.next_socket_connection(SOON).await;
    // The connection drops without a close frame: the bot opens another.
    second.drop_connection().await;
    let third = setup
        .fake
        .next_socket_connection(Duration::from_secs(30))
        .await;
    assert!(setup.fake.socket_connections_opened() >= 3);

    let click = fake_slack::block_actions_payload(
        APPROVER,
        CHANNEL,
        &preview.ts,
        "scalebot_approve",
        &preview.request_id,
        &setup.fake.response_url("10002"),
        "10002.1.a",
    );
    let envelope = third.send_interactive(click).await;
    third.wait_ack(&envelope, SOON).await;
    setup.wait_thread(&preview, "done", PROCEDURE).await;
    assert_eq!(setup.replicas("synapse"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_run_once_per_event_and_message() {
    let setup = start("http").await;
    let event = |event_id: &str| {
        serde_json::json!({
            "type": "event_callback",
            "team_id": fake_slack::TEAM_ID,
            "api_app_id": fake_slack::APP_ID,
            "event_id": event_id,
            "event_time": fake_slack::now_timestamp(),
            "event": {
                "type": "app_mention",
                "user": REQUESTER,
                "channel": CHANNEL,
                "ts": "1700000000.000100",
                "text": format!("<@{}> scale synapse 4", fake_slack::BOT_USER_ID),
            },
        })
        .to_string()
    };
    let post = |body: String, retry: Option<&'static str>| {
        let timestamp = fake_slack::now_timestamp();
        let mut request = setup
            .http
            .post(format!("{}/slack/events", setup.bot.url))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, fake_slack::sign(SECRET, timestamp, &body))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(body);
        if let Some(retry) = retry {
            request = request
                .header("X-Slack-Retry-Num", retry)
                .header("X-Slack-Retry-Reason", "http_timeout");
        }
        async move {
            request
                .send()
                .await
                .expect("request to the bot")
                .status()
                .as_u16()
        }
    };

    let challenge =
        serde_json::json!({"type": "url_verification", "challenge": "c0ffee", "token": "t"});
    let timestamp = fake_slack::now_timestamp();
    let body = challenge.to_string();
    let answer: Value = setup
        .http
        .post(format!("{}/slack/events", setup.bot.url))
        .header(SIGNATURE_HEADER, fake_slack::sign(SECRET, timestamp, &body))
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["challenge"], "c0ffee");

    assert_eq!(post(event("Ev0001"), None).await, 200);
    // Slack's retry of the same delivery, and the same message under a new
    // event id, are acknowledged and not run again.
    assert_eq!(post(event("Ev0001"), Some("1")).await, 200);
    assert_eq!(post(event("Ev0002"), None).await, 200);
    setup.preview().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let previews = setup
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|call| approve_value(&call.params).is_some())
        .count();
    assert_eq!(previews, 1, "one preview for one mention");
}
