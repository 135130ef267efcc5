//! Tests of the fake Slack itself: Web API responses and limits, rate limits,
//! uploads, response_url posts and Socket Mode, driven by raw HTTP, by
//! tokio-tungstenite and by slack-morphism's real client.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use integration_tests::fake_slack::{self, FakeSlack};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A raw HTTP/1.1 response.
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("response is not JSON ({error}): {}", self.body))
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the response.
async fn http(
    fake: &FakeSlack,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(fake.address())
            .await
            .expect("connect to fake Slack");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            fake.address(),
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send head");
        stream.write_all(body).await.expect("send body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("HTTP exchange timed out");
    let text = String::from_utf8(raw).expect("response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Calls a Web API method with a JSON body and the bot token.
async fn call_json(fake: &FakeSlack, method: &str, body: Value) -> HttpResponse {
    let authorization = format!("Bearer {}", fake_slack::BOT_TOKEN);
    http(
        fake,
        "POST",
        &format!("/api/{method}"),
        &[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Authorization", &authorization),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

#[test]
fn sign_matches_slack_vector() {
    // Slack's published example from "Verifying requests from Slack"; the
    // secret and ids are fictional documentation data.
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    assert_eq!(
        fake_slack::sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body),
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
}

#[tokio::test]
async fn post_message_stores_message() {
    let fake = FakeSlack::start().await;
    let first = call_json(
        &fake,
        "chat.postMessage",
        json!({"channel": "C1", "text": "one"}),
    )
    .await;
    let first = first.json();
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["channel"], "C1");
    assert_eq!(first["message"]["text"], "one");
    let parent_ts = first["ts"].as_str().expect("ts").to_string();

    let reply =
        json!({"channel": "C1", "text": "two", "thread_ts": parent_ts, "blocks": [section("two")]});
    let second = call_json(&fake, "chat.postMessage", reply).await.json();
    let reply_ts = second["ts"].as_str().expect("ts").to_string();
    assert!(reply_ts > parent_ts, "{reply_ts} after {parent_ts}");

    let thread = fake.thread("C1", &parent_ts);
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].thread_ts.as_deref(), Some(parent_ts.as_str()));
    assert_eq!(thread[1].blocks, Some(json!([section("two")])));
    assert_eq!(fake.messages("C1").len(), 2);
    assert!(fake.messages("C2").is_empty());

    let calls = fake.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].token.as_deref(), Some(fake_slack::BOT_TOKEN));
    assert_eq!(calls[0].params["text"], "one");
}

#[tokio::test]
async fn post_message_enforces_limits() {
    let fake = FakeSlack::start().await;
    let cases = [
        (
            json!({"channel": "C1", "blocks": vec![section("x"); 51]}),
            "invalid_blocks",
        ),
        (
            json!({"channel": "C1", "blocks": vec![section(&"a".repeat(2660)); 5]}),
            "msg_blocks_too_long",
        ),
        (
            json!({"channel": "C1", "blocks": [section(&"a".repeat(3001))]}),
            "invalid_blocks",
        ),
        (
            json!({"channel": "C1", "text": "a".repeat(40_001)}),
            "msg_too_long",
        ),
        (json!({"channel": "X1", "text": "hi"}), "channel_not_found"),
        (json!({"channel": "C1"}), "no_text"),
    ];
    for (body, expected) in cases {
        let answer = call_json(&fake, "chat.postMessage", body).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["ok"], false);
        assert_eq!(answer.json()["error"], expected);
    }
    assert!(fake.messages("C1").is_empty());
}

#[tokio::test]
async fn known_channels_restrict_posting() {
    let fake = FakeSlack::start().await;
    fake.set_known_channels(&["C1"]);
    let allowed = call_json(
        &fake,
        "chat.postMessage",
        json!({"channel": "C1", "text": "a"}),
    )
    .await;
    assert_eq!(allowed.json()["ok"], true);
    let rejected = call_json(
        &fake,
        "chat.postMessage",
        json!({"channel": "C2", "text": "a"}),
    )
    .await;
    assert_eq!(rejected.json()["error"], "channel_not_found");
}

#[tokio::test]
async fn wrong_token_gets_invalid_auth() {
    let fake = FakeSlack::start().await;
    let answer = http(
        &fake,
        "POST",
        "/api/chat.postMessage",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer xoxb-wrong"),
        ],
        br#"{"channel":"C1","text":"hi"}"#,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"ok": false, "error": "invalid_auth"}));
    assert!(fake.messages("C1").is_empty());
}

#[tokio::test]
async fn form_body_with_token_parameter() {
    let fake = FakeSlack::start().await;
    let blocks = json!([section("from a form")]).to_string();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", fake_slack::BOT_TOKEN)
        .append_pair("channel", "C1")
        .append_pair("blocks", &blocks)
        .finish();
    let answer = http(
        &fake,
        "POST",
        "/api/chat.postMessage",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(answer.json()["ok"], true, "{}", answer.body);
    let stored = fake.messages("C1");
    assert_eq!(stored[0].blocks, Some(json!([section("from a form")])));
    let call = &fake.calls_to("chat.postMessage")[0];
    assert_eq!(call.params.get("token"), None);
    assert_eq!(call.token.as_deref(), Some(fake_slack::BOT_TOKEN));
}

#[tokio::test]
async fn rate_limit_answers_429_once() {
    let fake = FakeSlack::start().await;
    fake.rate_limit_next("chat.postMessage", 7);
    let limited = call_json(
        &fake,
        "chat.postMessage",
        json!({"channel": "C1", "text": "a"}),
    )
    .await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.json(), json!({"ok": false, "error": "ratelimited"}));
    assert!(fake.messages("C1").is_empty());

    let next = call_json(
        &fake,
        "chat.postMessage",
        json!({"channel": "C1", "text": "a"}),
    )
    .await;
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["ok"], true);
    let statuses: Vec<u16> = fake
        .calls_to("chat.postMessage")
        .iter()
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn update_and_ephemeral() {
    let fake = FakeSlack::start().await;
    let posted = call_json(
        &fake,
        "chat.postMessage",
        json!({"channel": "C1", "text": "old"}),
    )
    .await;
    let ts = posted.json()["ts"].as_str().expect("ts").to_string();

    let updated = call_json(
        &fake,
        "chat.update",
        json!({"channel": "C1", "ts": ts, "text": "new"}),
    )
    .await;
    assert_eq!(updated.json()["ok"], true, "{}", updated.body);
    assert_eq!(updated.json()["text"], "new");
    let stored = &fake.messages("C1")[0];
    assert_eq!(stored.text.as_deref(), Some("new"));
    assert_eq!(stored.edits, 1);

    let missing = call_json(
        &fake,
        "chat.update",
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}),
    )
    .await;
    assert_eq!(missing.json()["error"], "message_not_found");

    let ephemeral = json!({"channel": "C1", "user": "U7", "text": "only you"});
    let answer = call_json(&fake, "chat.postEphemeral", ephemeral)
        .await
        .json();
    assert_eq!(answer["ok"], true);
    assert!(answer["message_ts"].is_string());
    let stored = fake.ephemeral();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].user, "U7");
    assert_eq!(fake.messages("C1").len(), 1);
}

#[tokio::test]
async fn upload_flow_shares_file() {
    let fake = FakeSlack::start().await;
    let answer = call_json(
        &fake,
        "files.getUploadURLExternal",
        json!({"filename": "plan.txt", "length": 5}),
    )
    .await;
    let answer = answer.json();
    assert_eq!(answer["ok"], true, "{answer}");
    let file_id = answer["file_id"].as_str().expect("file_id").to_string();
    let upload_url = answer["upload_url"].as_str().expect("upload_url");
    let path = upload_url
        .strip_prefix(fake.base_url())
        .expect("upload URL on the fake");
    assert_eq!(path, format!("/upload/{file_id}"));

    let early = json!({"files": [{"id": file_id}], "channel_id": "C1"});
    let early = call_json(&fake, "files.completeUploadExternal", early).await;
    assert_eq!(early.json()["error"], "file_not_found");

    let uploaded = http(
        &fake,
        "POST",
        path,
        &[("Content-Type", "text/plain")],
        b"hello",
    )
    .await;
    assert_eq!(uploaded.status, 200);
    assert_eq!(uploaded.body, "OK - 5");

    let complete = json!({
        "files": [{"id": file_id, "title": "Plan"}],
        "channel_id": "C1",
        "thread_ts": "1700000000.000100",
        "initial_comment": "the plan",
    });
    let complete = call_json(&fake, "files.completeUploadExternal", complete)
        .await
        .json();
    assert_eq!(complete["ok"], true, "{complete}");
    assert_eq!(complete["files"][0]["id"], file_id.as_str());
    assert_eq!(complete["files"][0]["title"], "Plan");

    let upload = &fake.uploads()[0];
    assert_eq!(upload.content.as_deref(), Some(&b"hello"[..]));
    assert_eq!(upload.declared_length, 5);
    let shared = upload.completed.as_ref().expect("completed");
    assert_eq!(shared.channel.as_deref(), Some("C1"));
    assert_eq!(shared.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(shared.initial_comment.as_deref(), Some("the plan"));
    let thread = fake.thread("C1", "1700000000.000100");
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].file_ids.len(), 1);
    assert_eq!(thread[0].file_ids[0], file_id);

    let unknown = json!({"files": [{"id": "F404"}], "channel_id": "C1"});
    let unknown = call_json(&fake, "files.completeUploadExternal", unknown).await;
    assert_eq!(unknown.json()["error"], "file_not_found");
    let missing = http(&fake, "POST", "/upload/F404", &[], b"x").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn response_url_records_posts() {
    let fake = FakeSlack::start().await;
    let url = fake.response_url("r1");
    let path = url.strip_prefix(fake.base_url()).expect("URL on the fake");
    let body = json!({"response_type": "ephemeral", "text": "done", "replace_original": true});
    for _ in 0..fake_slack::MAX_RESPONSE_URL_USES {
        let answer = http(
            &fake,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    let extra = http(
        &fake,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(extra.status, 404);
    let posts = fake.responses();
    assert_eq!(posts.len(), fake_slack::MAX_RESPONSE_URL_USES + 1);
    assert_eq!(posts[0].id, "r1");
    assert_eq!(posts[0].body, body);
}

#[tokio::test]
async fn usergroups_and_auth_test() {
    let fake = FakeSlack::start().await;
    fake.set_usergroup("S0614TZR7", &["U1", "U2"]);
    let authorization = format!("Bearer {}", fake_slack::BOT_TOKEN);
    let known = http(
        &fake,
        "GET",
        "/api/usergroups.users.list?usergroup=S0614TZR7",
        &[("Authorization", &authorization)],
        b"",
    )
    .await;
    assert_eq!(known.json(), json!({"ok": true, "users": ["U1", "U2"]}));
    let unknown = http(
        &fake,
        "GET",
        "/api/usergroups.users.list?usergroup=S1",
        &[("Authorization", &authorization)],
        b"",
    )
    .await;
    assert_eq!(unknown.json()["error"], "no_such_subteam");
    assert_eq!(fake.calls_to("usergroups.users.list")[0].http_method, "GET");

    let auth = call_json(&fake, "auth.test", json!({})).await.json();
    assert_eq!(auth["ok"], true);
    assert_eq!(auth["user_id"], fake_slack::BOT_USER_ID);
    assert_eq!(auth["bot_id"], fake_slack::BOT_ID);
    assert_eq!(auth["team_id"], fake_slack::TEAM_ID);
}

#[tokio::test]
async fn connections_open_requires_app_token() {
    let fake = FakeSlack::start().await;
    let with_bot_token = call_json(&fake, "apps.connections.open", json!({})).await;
    assert_eq!(with_bot_token.json()["error"], "not_allowed_token_type");
    let socket_url = open_socket_url(&fake).await;
    assert!(socket_url.starts_with("ws://127.0.0.1:"), "{socket_url}");
}

async fn open_socket_url(fake: &FakeSlack) -> String {
    let authorization = format!("Bearer {}", fake_slack::APP_TOKEN);
    let answer = http(
        fake,
        "POST",
        "/api/apps.connections.open",
        &[("Authorization", &authorization)],
        b"",
    )
    .await;
    let answer = answer.json();
    assert_eq!(answer["ok"], true, "{answer}");
    answer["url"].as_str().expect("url").to_string()
}

async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(TIMEOUT, socket.next())
            .await
            .expect("frame within timeout")
            .expect("socket open")
            .expect("valid frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("JSON frame");
        }
    }
}

#[tokio::test]
async fn socket_hello_and_ack_round_trip() {
    let fake = FakeSlack::start().await;
    let url = open_socket_url(&fake).await;
    let (mut client, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("connect to /socket");
    let hello = next_text(&mut client).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["num_connections"], 1);
    assert_eq!(hello["connection_info"]["app_id"], fake_slack::APP_ID);

    let connection = fake.next_socket_connection(TIMEOUT).await;
    assert_eq!(fake.socket_connections_opened(), 1);
    let payload = fake_slack::slash_command_payload(
        "/scale",
        "payments 3",
        "U1",
        "C1",
        "t1",
        &fake.response_url("r1"),
    );
    let envelope_id = connection.send_slash_command(payload.clone()).await;

    let envelope = next_text(&mut client).await;
    assert_eq!(envelope["type"], "slash_commands");
    assert_eq!(envelope["envelope_id"], envelope_id.as_str());
    assert_eq!(envelope["accepts_response_payload"], true);
    assert_eq!(envelope["payload"], payload);

    let ack = json!({"envelope_id": envelope_id, "payload": {"text": "working"}});
    client
        .send(Message::Text(ack.to_string().into()))
        .await
        .expect("send ack");
    assert_eq!(connection.wait_ack(&envelope_id, TIMEOUT).await, ack);

    let event_id = connection
        .send_events_api(json!({"type": "event_callback", "event_id": "Ev1"}), 2)
        .await;
    let event = next_text(&mut client).await;
    assert_eq!(event["envelope_id"], event_id.as_str());
    assert_eq!(event["retry_attempt"], 2);
    assert_eq!(event["retry_reason"], "timeout");

    connection.send_disconnect("refresh_requested").await;
    let disconnect = next_text(&mut client).await;
    assert_eq!(disconnect["type"], "disconnect");
    assert_eq!(disconnect["reason"], "refresh_requested");

    connection.close().await;
    connection.wait_closed(TIMEOUT).await;
    assert_eq!(fake.socket_connections_open(), 0);
}

#[tokio::test]
async fn socket_ticket_is_single_use() {
    let fake = FakeSlack::start().await;
    let url = open_socket_url(&fake).await;
    let (_client, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("first use of the ticket");
    let reused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(reused.is_err(), "a used ticket must be rejected");
}

fn slack_morphism_client(fake: &FakeSlack) -> SlackClient<SlackClientHyperHttpsConnector> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let connector =
        SlackClientHyperConnector::with_connector(https).with_slack_api_url(&fake.api_url());
    SlackClient::new(connector)
}

#[tokio::test]
async fn slack_morphism_client_uses_api_url() {
    let fake = FakeSlack::start().await;
    let client = slack_morphism_client(&fake);
    let token = SlackApiToken::new(SlackApiTokenValue::new(fake_slack::BOT_TOKEN.to_string()));
    let session = client.open_session(&token);

    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C1".into(),
            SlackMessageContent::new().with_text("hello".into()),
        ))
        .await
        .expect("chat.postMessage through slack-morphism");
    assert_eq!(posted.channel.0, "C1");
    assert_eq!(fake.messages("C1")[0].ts, posted.ts.0);

    fake.set_usergroup("S1", &["U1"]);
    let members = session
        .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new("S1".into()))
        .await
        .expect("usergroups.users.list through slack-morphism");
    assert_eq!(members.users, [SlackUserId("U1".into())]);

    let auth = session.auth_test().await.expect("auth.test");
    assert_eq!(auth.user_id.0, fake_slack::BOT_USER_ID);

    fake.rate_limit_next("chat.update", 3);
    let limited = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            "C1".into(),
            SlackMessageContent::new().with_text("edited".into()),
            posted.ts.clone(),
        ))
        .await;
    match limited {
        Err(SlackClientError::RateLimitError(error)) => {
            assert_eq!(error.retry_after, Some(Duration::from_secs(3)));
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
}
