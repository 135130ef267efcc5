//! Pod subresources served by the simulated programs: `log` and `proxy`.
//! (`exec` lives in [`super::exec`].)

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::read;
use super::request::{Params, Target};

/// Port of a pod proxy request without an explicit port, as on a real
/// server.
const DEFAULT_PROXY_PORT: u16 = 80;

/// Names of the pod's containers, regular ones first.
fn container_names(pod: &Value) -> Vec<String> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|field| pod["spec"][field].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Picks the container a request names, or the pod's only regular container.
/// Several containers and no name is a 400, as on a real server.
pub fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let all = container_names(pod);
    if let Some(requested) = requested {
        if all.iter().any(|c| c == requested) {
            return Ok(requested.to_string());
        }
        return Err(ApiError::BadRequest(format!(
            "container {requested} is not valid for pod {name}"
        )));
    }
    let regular: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    match regular.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ApiError::BadRequest(format!(
            "pod {name} has no containers"
        ))),
        many => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            many.join(" ")
        ))),
    }
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

/// `GET .../pods/{name}/log`: the container's log as text. Honours
/// `container`, `tailLines` and `limitBytes`.
/// NOTE: `follow=true` returns the log so far and ends the response; new
/// lines are not streamed. `sinceSeconds`, `timestamps` and `previous` are
/// ignored.
pub fn logs(app: &AppState, target: &Target, params: &Params) -> Result<Response, ApiError> {
    let pod = read::fetch(app, target)?;
    let container = choose_container(&pod, params.non_empty("container"))?;
    if phase(&pod) == "Pending" {
        let reason = waiting_reason(&pod, &container).unwrap_or_else(|| "ContainerCreating".into());
        return Err(ApiError::BadRequest(format!(
            "container \"{container}\" in pod \"{}\" is waiting to start: {reason}",
            target.name_or_empty()
        )));
    }
    let mut text = app.programs.logs(
        &app.cluster,
        target.namespace_or_empty(),
        target.name_or_empty(),
        &container,
    );
    if let Some(tail) = params.number("tailLines")? {
        text = tail_lines(&text, tail as usize);
    }
    if let Some(limit) = params.number("limitBytes")? {
        let mut end = (limit as usize).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain")], text).into_response())
}

fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == container)?["state"]["waiting"]["reason"]
        .as_str()
        .map(str::to_string)
}

/// Keeps the last `count` lines of `text` and its final newline.
fn tail_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    let mut out = lines[start..].join("\n");
    if !out.is_empty() && text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `.../pods/{name}[:{port}]/proxy/{path}`: an HTTP GET to the pod's
/// simulated server. The port is a number or a container port name; without
/// one, port 80.
pub fn proxy(app: &AppState, target: &Target, method: &Method) -> Result<Response, ApiError> {
    if method != Method::GET {
        return Err(ApiError::MethodNotAllowed(format!(
            "{method} through the pod proxy is not supported by kubesim; only GET is"
        )));
    }
    let pod = read::fetch(app, target)?;
    let port = match target.port.as_deref() {
        None | Some("") => DEFAULT_PROXY_PORT,
        Some(text) => resolve_port(&pod, text)?,
    };
    if phase(&pod) != "Running" {
        return Err(ApiError::ServiceUnavailable(format!(
            "error trying to reach service: pod {} is not running",
            target.name_or_empty()
        )));
    }
    let (status, body) = app.programs.proxy_get(
        &app.cluster,
        target.namespace_or_empty(),
        target.name_or_empty(),
        port,
        &target.subpath,
    );
    let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn resolve_port(pod: &Value, text: &str) -> Result<u16, ApiError> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(port);
    }
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == text)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid port {text:?}: not a number or a named container port"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tail_lines_keeps_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_lines("a\nb", 5), "a\nb");
        assert_eq!(tail_lines("a\nb\n", 0), "");
    }

    #[test]
    fn container_choice_needs_name_when_ambiguous() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]}});
        assert!(choose_container(&pod, None).is_err());
        assert_eq!(choose_container(&pod, Some("sidecar")).unwrap(), "sidecar");
        assert!(choose_container(&pod, Some("missing")).is_err());
    }

    #[test]
    fn named_port_resolves_to_container_port() {
        let pod = json!({"spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(resolve_port(&pod, "http").unwrap(), 8080);
        assert_eq!(resolve_port(&pod, "9090").unwrap(), 9090);
        assert!(resolve_port(&pod, "nope").is_err());
    }
}
