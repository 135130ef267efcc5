//! Console adapter: each input line is `<user>: <text>`, replies go to
//! stdout. Works interactively and from a pipe: when input ends, it waits
//! for running procedures to finish, then returns.

use std::time::Duration;

use commands::engine::{Engine, Reply, ReplyBody, Request};
use commands::identity::{Identity, Platform};
use commands::preview::Impact;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Capacity of the reply queue between the engine and the printer.
pub const REPLY_QUEUE: usize = 256;

/// Channel name that console requests carry, for audit and locks.
pub const CHANNEL: &str = "console";

/// Maximum time to wait for running procedures once input has ended. A
/// rollout may take minutes, and a pipe closing is no reason to cut it.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Maximum time to wait for running procedures after a shutdown signal.
/// Procedures still running then lose their lock with its TTL and are
/// reported as interrupted by the next bot that starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Splits `oncall: scale synapse 4` into the user and the text. The user
/// name is letters, digits, `.`, `_` and `-`.
pub fn parse_line(line: &str) -> Result<(String, String), String> {
    let line = line.trim();
    let Some((user, text)) = line.split_once(':') else {
        return Err(format!(
            "input {line:?} has no user: write `<user>: <command>`, e.g. `oncall: scale synapse 4`"
        ));
    };
    let user = user.trim();
    let valid = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(format!(
            "user {user:?} is not a console name: use letters, digits, '.', '_' or '-', e.g. `oncall: scale synapse 4`"
        ));
    }
    Ok((user.to_string(), text.trim().to_string()))
}

/// Reads requests from `input` until it ends or `shutdown` resolves,
/// writing replies to `output`, then waits for running procedures.
pub async fn run<R, W, S>(engine: Engine, input: R, output: W, shutdown: S) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    S: std::future::Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let (sender, receiver) = mpsc::channel(REPLY_QUEUE);
    let printer = tokio::spawn(print_replies(receiver, output));
    let sweeper = tokio::spawn(commands::engine::expiry::sweep_expired(
        engine.clone(),
        sender.clone(),
        commands::engine::expiry::EXPIRY_SWEEP_INTERVAL,
    ));

    match commands::engine::recovery::report_interrupted(&engine, &sender).await {
        Ok(0) => {}
        Ok(count) => tracing::warn!(count, "reported procedures interrupted by a stopped bot"),
        Err(error) => tracing::warn!(%error, "could not check for interrupted procedures"),
    }

    let mut input = input;
    let mut sequence = 0u64;
    let mut drain_timeout = DRAIN_TIMEOUT;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = tokio::select! {
            read = input.read_until(b'\n', &mut buffer) => read?,
            () = &mut shutdown => {
                tracing::info!("shutdown requested: no new requests, waiting for running procedures");
                engine.begin_shutdown();
                let notice = format!(
                    "shutting down: no new requests; approved requests that have not started are dropped; waiting up to {}s for running procedures",
                    SHUTDOWN_GRACE.as_secs()
                );
                let _ = sender
                    .send(Reply::new(CHANNEL, None, ReplyBody::Notice(notice)))
                    .await;
                drain_timeout = SHUTDOWN_GRACE;
                0
            }
        };
        if read == 0 {
            break;
        }
        // Invalid UTF-8 rejects that line only; the console keeps running
        // because procedures may be in flight.
        let line = match std::str::from_utf8(&buffer) {
            Ok(line) => line.trim_end_matches(['\n', '\r']).to_string(),
            Err(error) => {
                let message = format!(
                    "input line is not valid UTF-8 (invalid byte at offset {}); it was ignored",
                    error.valid_up_to()
                );
                let _ = sender
                    .send(Reply::new(CHANNEL, None, ReplyBody::Error(message)))
                    .await;
                continue;
            }
        };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        sequence += 1;
        match parse_line(&line) {
            Ok((user, text)) => {
                let request = Request {
                    trace_id: format!("console-{sequence}"),
                    delivery_id: None,
                    user: Identity::new(Platform::Console, &user),
                    roles: Vec::new(),
                    display_name: user,
                    channel: CHANNEL.to_string(),
                    text,
                };
                engine.handle(request, sender.clone()).await;
            }
            Err(message) => {
                let reply = Reply::new(CHANNEL, None, ReplyBody::Error(message));
                let _ = sender.send(reply).await;
            }
        }
    }

    let idle = engine.wait_idle(drain_timeout).await;
    if !idle {
        // Nothing new may start while the console exits.
        engine.begin_shutdown();
        let reply = Reply::new(
            CHANNEL,
            None,
            ReplyBody::Error(format!(
                "procedures still running after {}s; exiting without waiting for them. Their locks expire with their TTL and the next bot reports them.",
                drain_timeout.as_secs()
            )),
        );
        let _ = sender.send(reply).await;
    }
    sweeper.abort();
    drop(sender);
    // Procedures that outlived the drain timeout still hold reply senders,
    // so the printer gets a bounded wait of its own.
    match tokio::time::timeout(Duration::from_secs(5), printer).await {
        Ok(joined) => joined.map_err(std::io::Error::other)??,
        Err(_elapsed) => {}
    }
    if idle {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "exited while procedures were still running",
        ))
    }
}

async fn print_replies<W: AsyncWrite + Unpin>(
    mut receiver: mpsc::Receiver<Reply>,
    mut output: W,
) -> std::io::Result<()> {
    while let Some(reply) = receiver.recv().await {
        let text = render(&reply);
        output.write_all(text.as_bytes()).await?;
        output.flush().await?;
    }
    Ok(())
}

/// Renders one reply as console text.
pub fn render(reply: &Reply) -> String {
    let tag = reply
        .request_id
        .as_deref()
        .map(|id| format!("[{id}] "))
        .unwrap_or_default();
    match &reply.body {
        ReplyBody::Text(text) | ReplyBody::Notice(text) => indent(&format!("{tag}{text}")),
        ReplyBody::Error(text) => indent(&format!("{tag}error: {text}")),
        ReplyBody::Preview { impact, request_id } => render_preview(request_id, impact),
        ReplyBody::Progress(line) | ReplyBody::Decided { text: line, .. } => {
            indent(&format!("{tag}{line}"))
        }
        ReplyBody::Result {
            succeeded,
            summary,
            details,
        } => {
            let mark = if *succeeded { "done" } else { "FAILED" };
            let mut text = format!("{tag}{mark}: {summary}\n");
            for line in details {
                text.push_str(&format!("    {line}\n"));
            }
            text
        }
    }
}

fn indent(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn render_preview(request_id: &str, impact: &Impact) -> String {
    let mut text = format!("[{request_id}] preview: {}\n", impact.action);
    for (key, value) in impact.fields() {
        // Keys carry a sort prefix ("1 workload"); show the name only.
        let name = key.split_once(' ').map(|(_, n)| n).unwrap_or(key);
        text.push_str(&format!("    {name:<10} {value}\n"));
    }
    for note in &impact.notes {
        text.push_str(&format!("    note       {note}\n"));
    }
    text.push_str("    steps:\n");
    for (i, step) in impact.steps.iter().enumerate() {
        text.push_str(&format!("      {}. {step}\n", i + 1));
    }
    let expires = chrono::DateTime::from_timestamp_millis(impact.expires_at_ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    text.push_str(&format!(
        "    approve with `approve {request_id}`, reject with `reject {request_id} <reason>`; expires at {expires}\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_splits_user_and_text() {
        let (user, text) = parse_line("oncall:  scale synapse 4 ").unwrap();
        assert_eq!(user, "oncall");
        assert_eq!(text, "scale synapse 4");
    }

    #[test]
    fn parse_line_rejects_missing_user() {
        let error = parse_line("scale synapse 4").unwrap_err();
        assert!(error.contains("<user>: <command>"), "{error}");
    }

    #[test]
    fn parse_line_rejects_spaces_in_user() {
        assert!(parse_line("on call: scale synapse 4").is_err());
    }
}
