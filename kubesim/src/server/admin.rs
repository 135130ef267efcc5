//! kubesim's own endpoints under `/kubesim/`, for tests and demos driving
//! the simulation over HTTP:
//!
//! - `GET /kubesim/faults`: the fault plan as JSON.
//! - `POST /kubesim/faults`: adds to the plan. Body fields, all optional:
//!   `error` (`{"verb", "path_contains", "status", "remaining"}`),
//!   `latency_ms`, `drop_watches`, `never_ready_app`.
//! - `DELETE /kubesim/faults`: clears the plan.
//! - `DELETE /kubesim/nodes/{name}`: a node going away. The Node object is
//!   deleted; the controllers react to its absence.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{self, ApiError};
use crate::cluster::{ErrorRule, FaultPlan};
use crate::registry;

/// Status codes an error rule may inject.
const INJECTABLE: [u16; 5] = [403, 409, 429, 500, 503];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRuleRequest {
    /// Kubernetes verb or `*`.
    #[serde(default = "any_verb")]
    verb: String,
    #[serde(default)]
    path_contains: String,
    status: u16,
    /// How many requests fail; absent for every request.
    remaining: Option<u32>,
}

fn any_verb() -> String {
    "*".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    error: Option<ErrorRuleRequest>,
    latency_ms: Option<u64>,
    drop_watches: Option<bool>,
    never_ready_app: Option<String>,
}

fn plan_json(plan: &FaultPlan) -> serde_json::Value {
    let errors: Vec<_> = plan
        .errors
        .iter()
        .map(|r| json!({"verb": r.verb, "path_contains": r.path_contains, "status": r.status, "remaining": r.remaining}))
        .collect();
    let mut apps: Vec<&String> = plan.never_ready_apps.iter().collect();
    apps.sort();
    json!({
        "errors": errors,
        "latency_ms": plan.latency.as_millis() as u64,
        "drop_watches": plan.drop_watches,
        "never_ready_apps": apps,
    })
}

pub async fn show_faults(State(app): State<AppState>) -> Response {
    Json(plan_json(&app.cluster.faults.snapshot())).into_response()
}

pub async fn add_faults(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: FaultRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid fault request: {e}; expected fields error {{verb, path_contains, status, remaining}}, latency_ms, drop_watches, never_ready_app"
        ))
    })?;
    if let Some(rule) = &request.error {
        if !INJECTABLE.contains(&rule.status) {
            return Err(ApiError::BadRequest(format!(
                "invalid error status {}: expected one of 403, 409, 429, 500, 503",
                rule.status
            )));
        }
        if rule.remaining == Some(0) {
            return Err(ApiError::BadRequest(
                "invalid remaining 0: expected at least 1, or no value for always".into(),
            ));
        }
    }
    let plan = app.cluster.faults.with(|plan| {
        if let Some(rule) = request.error {
            plan.errors.push(ErrorRule {
                verb: rule.verb,
                path_contains: rule.path_contains,
                status: rule.status,
                remaining: rule.remaining,
            });
        }
        if let Some(ms) = request.latency_ms {
            plan.latency = Duration::from_millis(ms);
        }
        if let Some(drop) = request.drop_watches {
            plan.drop_watches = drop;
        }
        if let Some(app_label) = request.never_ready_app {
            plan.never_ready_apps.insert(app_label);
        }
        plan.clone()
    });
    tracing::info!(plan = %plan_json(&plan), "fault plan changed");
    Ok(Json(plan_json(&plan)).into_response())
}

pub async fn clear_faults(State(app): State<AppState>) -> Response {
    let plan = app.cluster.faults.with(|plan| {
        *plan = FaultPlan::default();
        plan.clone()
    });
    tracing::info!("fault plan cleared");
    Json(plan_json(&plan)).into_response()
}

pub async fn delete_node(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let nodes = registry::find("", "v1", "nodes").expect("nodes are registered");
    let deleted = app
        .cluster
        .store
        .delete(&nodes.key(), "", &name)
        .map_err(|e| ApiError::from_store(e, nodes))?;
    tracing::info!(node = %name, "node removed");
    Ok(Json(error::success_status(nodes, &deleted)).into_response())
}
