//! The `scale` subresource of Deployments, StatefulSets and ReplicaSets.
//!
//! Reads return an `autoscaling/v1` Scale built from the parent; writes
//! (PUT, and PATCH of any format applied to the Scale object) set only the
//! parent's `spec.replicas`.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::apply;
use super::error::ApiError;
use super::patching::{PatchKind, apply_body};
use super::read;
use super::request::{Params, Target};
use super::selector::selector_text;
use super::validate;
use super::write;

/// Builds the Scale view of a parent object. `spec.replicas` is omitted when
/// 0, as the Go type serialises it.
pub fn to_scale(parent: &Value) -> Value {
    let metadata = &parent["metadata"];
    let mut scale_metadata = serde_json::Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = metadata.get(field) {
            scale_metadata.insert(field.into(), value.clone());
        }
    }
    let replicas = parent["spec"]["replicas"].as_i64().unwrap_or(1);
    let spec = if replicas == 0 {
        json!({})
    } else {
        json!({"replicas": replicas})
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_metadata,
        "spec": spec,
        "status": {
            "replicas": parent["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_text(&parent["spec"]["selector"]),
        },
    })
}

pub fn get(app: &AppState, target: &Target) -> Result<Response, ApiError> {
    let parent = read::fetch(app, target)?;
    Ok(axum::Json(to_scale(&parent)).into_response())
}

pub fn update(
    app: &AppState,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut wanted = write::parse_object(body)?;
    match wanted["kind"].as_str() {
        None | Some("Scale") => wanted["kind"] = json!("Scale"),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({other}) does not match the expected kind (Scale)"
            )));
        }
    }
    write::check_name(target, &wanted)?;
    set_replicas(app, target, params.dry_run()?, |_| Ok(wanted))
}

pub fn patch(
    app: &AppState,
    target: &Target,
    params: &Params,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let patch_kind = PatchKind::from_content_type(content_type, true)?;
    if patch_kind == PatchKind::Apply {
        apply::field_manager(params)?;
    }
    set_replicas(app, target, params.dry_run()?, |scale| {
        let patched = apply_body(patch_kind, "Scale", scale, body)?;
        if patched["metadata"]["name"] != scale["metadata"]["name"] {
            return Err(ApiError::BadRequest(
                "a patch must not change metadata.name".into(),
            ));
        }
        Ok(patched)
    })
}

/// Computes the new Scale from the current one with `change`, checks its
/// resourceVersion precondition and replica count, and writes the count to
/// the parent. Returns the Scale of the updated parent.
fn set_replicas<F>(
    app: &AppState,
    target: &Target,
    dry_run: bool,
    change: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&Value) -> Result<Value, ApiError>,
{
    let resource = target.resource;
    let parent = write::modify(app, target, dry_run, |current| {
        let scale = to_scale(current);
        let wanted = change(&scale)?;
        write::check_precondition(target, &wanted, current)?;
        validate::check_scale(resource, &wanted)?;
        let mut next = current.clone();
        next["spec"]["replicas"] = json!(wanted["spec"]["replicas"].as_i64().unwrap_or(0));
        Ok(next)
    })?;
    Ok(axum::Json(to_scale(&parent)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_omits_zero_replicas_and_formats_selector() {
        let parent = json!({
            "metadata": {"name": "synapse", "namespace": "butterfly", "uid": "u", "resourceVersion": "7",
                         "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"x": "y"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "synapse"}}},
            "status": {"replicas": 2},
        });
        let scale = to_scale(&parent);
        assert_eq!(scale["spec"], json!({}));
        assert_eq!(
            scale["status"],
            json!({"replicas": 2, "selector": "app=synapse"})
        );
        assert!(scale["metadata"].get("labels").is_none());
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
    }
}
