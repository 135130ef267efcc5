//! `pods/exec` over WebSocket, with the Kubernetes channel protocols
//! `v5.channel.k8s.io` and `v4.channel.k8s.io`.
//!
//! Every binary frame starts with a channel byte: 0 stdin, 1 stdout,
//! 2 stderr, 3 status (a `Status` object, sent last), 4 terminal resize,
//! 255 close (v5 only: `[255, 0]` from the client means stdin is closed).
//! The server first sends an empty frame on the lowest channel it writes,
//! which clients take as the stream being open. SPDY is not supported: a
//! request without a WebSocket upgrade gets 400.
//!
//! NOTE: v4 has no stdin close signal. A v4 client with stdin ends its input
//! by closing the connection, so the output cannot be sent after it. kubectl
//! 1.32 and kube-rs 5 both negotiate v5.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::pod::choose_container;
use super::read;
use super::request::{Params, Target};
use crate::programs::ExecOutput;

/// Channel protocols accepted, most preferred first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// Stdin silence after which the command runs with the input so far.
const STDIN_IDLE: Duration = Duration::from_secs(1);

/// Largest stdin accepted for one command.
const MAX_STDIN_BYTES: usize = 8 * 1024 * 1024;

/// Largest payload per frame; longer output is split.
const FRAME_PAYLOAD: usize = 32 * 1024;

/// Delay before the output of a command without stdin. kubectl 1.32 drops
/// frames that arrive before it has registered its streams.
const OUTPUT_DELAY: Duration = Duration::from_millis(100);

/// How long the server waits for the client to close after the status frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The options of one exec request.
struct ExecRequest {
    namespace: String,
    pod: String,
    container: String,
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn upgrade_required() -> ApiError {
    ApiError::BadRequest("Upgrade request required".into())
}

/// True when the request's Upgrade header names WebSocket (kubectl's SPDY
/// fallback does not).
fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Picks the first protocol of [`PROTOCOLS`] that the client offers.
fn choose_protocol(headers: &HeaderMap) -> Option<&'static str> {
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect();
    PROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
}

pub async fn start(
    app: &AppState,
    target: &Target,
    params: &Params,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    if !wants_websocket(&parts.headers) {
        return Err(upgrade_required());
    }
    let Some(protocol) = choose_protocol(&parts.headers) else {
        return Err(ApiError::BadRequest(format!(
            "none of the offered WebSocket subprotocols is supported; supported: {}",
            PROTOCOLS.join(", ")
        )));
    };

    let command = params.all("command");
    if command.is_empty() {
        return Err(ApiError::BadRequest(
            "you must specify at least 1 command".into(),
        ));
    }
    let stdin = params.flag("stdin");
    let stdout = params.flag("stdout");
    let stderr = params.flag("stderr");
    if !stdin && !stdout && !stderr {
        return Err(ApiError::BadRequest(
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        ));
    }

    let pod = read::fetch(app, target)?;
    let container = choose_container(&pod, params.non_empty("container"))?;
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    if phase != "Running" {
        return Err(ApiError::BadRequest(format!(
            "cannot exec into a container in a pod that is not running; current phase is {phase}"
        )));
    }

    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|_| upgrade_required())?;
    let request = ExecRequest {
        namespace: target.namespace_or_empty().to_string(),
        pod: target.name_or_empty().to_string(),
        container,
        command,
        stdin,
        stdout,
        stderr,
        tty: params.flag("tty"),
    };
    let app = app.clone();
    let span = tracing::info_span!("exec", namespace = %request.namespace, pod = %request.pod, container = %request.container, protocol);
    Ok(upgrade
        .protocols([protocol])
        .on_upgrade(move |socket| session(app, request, socket).instrument(span))
        .into_response())
}

/// Collects stdin, runs the command, and streams its output, then the status.
async fn session(app: AppState, request: ExecRequest, socket: WebSocket) {
    let (mut sink, mut incoming) = socket.split();
    let opening = if request.stdout {
        STDOUT
    } else if request.stderr && !request.tty {
        STDERR
    } else {
        STATUS
    };
    if sink
        .send(Message::Binary(vec![opening].into()))
        .await
        .is_err()
    {
        return;
    }
    let stdin = if request.stdin {
        read_stdin(&mut incoming).await
    } else {
        tokio::time::sleep(OUTPUT_DELAY).await;
        Vec::new()
    };
    // Later frames (resize, a late stdin close) are read and dropped. Reading
    // also lets the WebSocket layer reply to the client's pings.
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    });

    let output = app.programs.exec(
        &app.cluster,
        &request.namespace,
        &request.pod,
        &request.container,
        &request.command,
        &stdin,
    );
    tracing::info!(command = ?request.command, exit_code = output.exit_code, "exec finished");

    let frames = output_frames(&request, output);
    for frame in frames {
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            tracing::debug!("exec client went away before the status was sent");
            reader.abort();
            return;
        }
    }
    // kubectl treats any close code but 1000 (normal closure) as an error.
    let close = CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
    let abort = reader.abort_handle();
    if tokio::time::timeout(CLOSE_TIMEOUT, reader).await.is_err() {
        abort.abort();
    }
}

/// Reads stdin frames until the client closes stdin (`[255, 0]`, v5 only),
/// closes the connection, or sends nothing for [`STDIN_IDLE`].
///
/// The simulated programs run to completion on their whole input, so the
/// command starts only after this returns. The idle limit keeps an
/// interactive `kubectl exec -i` (stdin never closed) from waiting forever
/// for a command that reads no input.
async fn read_stdin(incoming: &mut SplitStream<WebSocket>) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let frame = match tokio::time::timeout(STDIN_IDLE, incoming.next()).await {
            Err(_) => {
                tracing::debug!(bytes = data.len(), "stdin idle, running the command");
                break;
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(Message::Binary(frame)))) => frame,
            Ok(Some(Ok(_))) => continue,
        };
        match frame.first() {
            Some(&STDIN) => {
                if data.len() + frame.len() > MAX_STDIN_BYTES {
                    tracing::warn!(
                        limit = MAX_STDIN_BYTES,
                        "stdin exceeds the limit, truncating"
                    );
                    break;
                }
                data.extend_from_slice(&frame[1..]);
            }
            Some(&CLOSE) if frame.get(1) == Some(&STDIN) => break,
            // Resize frames and empty channel-opening frames.
            _ => {}
        }
    }
    data
}

/// Frames of the command's output: stdout, stderr (merged into stdout on a
/// terminal), then the status.
fn output_frames(request: &ExecRequest, output: ExecOutput) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let (stdout, stderr) = if request.tty {
        ([output.stdout, output.stderr].concat(), Vec::new())
    } else {
        (output.stdout, output.stderr)
    };
    if request.stdout || request.tty {
        frames.extend(channel_frames(STDOUT, &stdout));
    }
    if request.stderr && !request.tty {
        frames.extend(channel_frames(STDERR, &stderr));
    }
    let status = exit_status(&request.command, output.exit_code);
    let mut status_frame = vec![STATUS];
    status_frame.extend(serde_json::to_vec(&status).expect("JSON values serialise"));
    frames.push(status_frame);
    frames
}

fn channel_frames(channel: u8, data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks(FRAME_PAYLOAD)
        .map(|chunk| {
            let mut frame = Vec::with_capacity(chunk.len() + 1);
            frame.push(channel);
            frame.extend_from_slice(chunk);
            frame
        })
        .collect()
}

/// Builds the status channel's `Status`, as a kubelet reports a command's exit.
fn exit_status(command: &[String], exit_code: i32) -> Value {
    if exit_code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {exit_code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn prefers_v5_over_v4() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io, v5.channel.k8s.io"),
        );
        assert_eq!(choose_protocol(&headers), Some("v5.channel.k8s.io"));
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("channel.k8s.io"),
        );
        assert_eq!(choose_protocol(&headers), None);
    }

    #[test]
    fn failure_status_carries_exit_code() {
        let status = exit_status(&["nodetool".into(), "status".into()], 2);
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "2");
        assert_eq!(
            status["message"],
            "command terminated with non-zero exit code: error executing command [nodetool status], exit code 2"
        );
    }

    #[test]
    fn spdy_upgrade_is_not_websocket() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!wants_websocket(&headers));
    }
}
