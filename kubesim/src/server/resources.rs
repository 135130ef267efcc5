//! Dispatch of resource URLs (`/api/v1/...`, `/apis/{group}/{version}/...`)
//! to the read, write, watch and subresource handlers, after the verb check
//! and fault injection.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::request::{Params, Representation, Target, parse_target};
use super::{AppState, exec, patching, pod, read, scale, watch, write};

/// Largest request body accepted; a real API server's limit is 3 MiB.
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub async fn core(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    request: Request,
) -> Response {
    serve(app, "", "v1", &rest, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn grouped(
    State(app): State<AppState>,
    Path((group, version, rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve(app, &group, &version, &rest, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Names the Kubernetes verb of a request, as RBAC and the fault plan do.
fn verb(method: &Method, target: &Target, watching: bool) -> &'static str {
    let named = target.name.is_some();
    match *method {
        Method::GET if watching => "watch",
        Method::GET if named || target.subresource.is_some() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed(
        "the server does not allow this method on the requested resource".into(),
    )
}

/// A resource request after its checks, ready for its handler.
struct Call<'a> {
    app: &'a AppState,
    target: &'a Target,
    params: &'a Params,
    method: Method,
    watching: bool,
    representation: Representation,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

async fn serve(
    app: AppState,
    group: &str,
    version: &str,
    rest: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let target = parse_target(group, version, rest)?;
    let (parts, body) = request.into_parts();
    let params = Params::from_uri(&parts.uri)?;
    let watching = params.flag("watch");
    let verb = verb(&parts.method, &target, watching);
    check_verb(&target, verb)?;
    if let Some(code) = app.cluster.faults.take_error(verb, parts.uri.path()) {
        let subject = (
            target.resource,
            target.namespace_or_empty(),
            target.name_or_empty(),
        );
        return Err(ApiError::injected(code, verb, Some(subject)));
    }
    if target.subresource.as_deref() == Some("exec") {
        return exec::start(&app, &target, &params, parts).await;
    }

    let body = read_body(&parts, body).await?;
    let header_text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let content_type = header_text(header::CONTENT_TYPE);
    if matches!(parts.method, Method::POST | Method::PUT) {
        check_json_body(content_type)?;
    }
    let call = Call {
        app: &app,
        target: &target,
        params: &params,
        method: parts.method.clone(),
        watching,
        representation: Representation::from_request(header_text(header::ACCEPT), &params)?,
        content_type,
        body: &body,
    };
    dispatch(&call)
}

/// 405 unless the resource (or subresource) supports `verb`.
fn check_verb(target: &Target, verb: &str) -> Result<(), ApiError> {
    let allowed = match target.subresource.as_deref() {
        None => target.resource.verbs.contains(&verb),
        Some(name) => target
            .resource
            .subresource(name)
            .is_some_and(|s| s.verbs.contains(&verb)),
    };
    if allowed {
        Ok(())
    } else {
        Err(method_not_allowed())
    }
}

fn dispatch(call: &Call) -> Result<Response, ApiError> {
    let Call {
        app,
        target,
        params,
        representation,
        content_type,
        body,
        ..
    } = *call;
    let method = &call.method;
    match target.subresource.as_deref() {
        None => match (method.clone(), target.name.is_some()) {
            (Method::GET, _) if call.watching => watch::start(app, target, params, representation),
            (Method::GET, true) => read::get(app, target, representation),
            (Method::GET, false) => read::list(app, target, params, representation),
            (Method::POST, false) => write::create(app, target, params, body),
            (Method::PUT, true) => write::update(app, target, params, body),
            (Method::PATCH, true) => {
                patching::patch(app, target, params, content_type, body, false)
            }
            (Method::DELETE, true) => write::delete(app, target, params, body),
            (Method::DELETE, false) => write::delete_collection(app, target, params),
            _ => Err(method_not_allowed()),
        },
        Some("scale") => match *method {
            Method::GET => scale::get(app, target),
            Method::PUT => scale::update(app, target, params, body),
            Method::PATCH => scale::patch(app, target, params, content_type, body),
            _ => Err(method_not_allowed()),
        },
        Some("status") => match *method {
            Method::GET => read::get(app, target, representation),
            Method::PUT => write::update_status(app, target, params, body),
            Method::PATCH => patching::patch(app, target, params, content_type, body, true),
            _ => Err(method_not_allowed()),
        },
        Some("log") => pod::logs(app, target, params),
        Some("proxy") => pod::proxy(app, target, method),
        Some(_) => Err(method_not_allowed()),
    }
}

async fn read_body(parts: &Parts, body: Body) -> Result<Vec<u8>, ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return Ok(Vec::new());
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "failed to read the request body (limit {MAX_BODY_BYTES} bytes): {e}"
            ))
        })?;
    Ok(bytes.to_vec())
}

/// Create and update bodies must be JSON; kubesim does not decode protobuf
/// or YAML there.
fn check_json_body(content_type: Option<&str>) -> Result<(), ApiError> {
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or("application/json");
    if media_type == "application/json" || media_type == "*/*" {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "the body of the request was in an unknown format - accepted media types include: application/json (got {media_type})"
    )))
}
