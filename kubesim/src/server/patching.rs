//! PATCH: choosing the patch format from Content-Type and applying it to
//! the main resource or its `status` subresource.

use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::apply;
use super::error::ApiError;
use super::request::{Params, Target};
use super::write::{self, check_precondition, keep_status};
use crate::patch::{self, PatchError};

/// The four PATCH formats, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`, built-in kinds only.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: Option<&str>, builtin: bool) -> Result<Self, ApiError> {
        let media_type = content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        let kind = match media_type {
            "application/merge-patch+json" => Self::Merge,
            "application/json-patch+json" => Self::Json,
            "application/strategic-merge-patch+json" if builtin => Self::Strategic,
            "application/apply-patch+yaml" => Self::Apply,
            _ => {
                let mut accepted = vec![
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ];
                if builtin {
                    accepted.push("application/strategic-merge-patch+json");
                }
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body of the request was in an unknown format - accepted media types include: {}",
                    accepted.join(", ")
                )));
            }
        };
        Ok(kind)
    }
}

/// Applies a merge, JSON or strategic patch body to `current`. `kind` is the
/// object's kind, which selects the strategic merge keys.
pub fn apply_body(
    patch_kind: PatchKind,
    kind: &str,
    current: &Value,
    body: &[u8],
) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the patch is not valid JSON: {e}")))?;
    let patched = match patch_kind {
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            patch::merge::apply(current, &patch)
        }
        PatchKind::Json => patch::json::apply(current, &patch).map_err(patch_failed)?,
        PatchKind::Strategic => {
            patch::strategic::apply(kind, current, &patch).map_err(patch_failed)?
        }
    };
    if !patched.is_object() {
        return Err(ApiError::BadRequest(
            "the patched object is not a JSON object".into(),
        ));
    }
    Ok(patched)
}

/// Maps a patch that cannot be applied to 422, the client's fault, as a real
/// server does for a failed JSON patch test or a malformed strategic patch.
fn patch_failed(error: PatchError) -> ApiError {
    ApiError::Invalid {
        message: error.to_string(),
        subject: Default::default(),
        causes: Vec::new(),
    }
}

/// 400 when a patch renames or moves the object.
fn check_identity_kept(target: &Target, current: &Value, patched: &Value) -> Result<(), ApiError> {
    for field in ["name", "namespace"] {
        if patched["metadata"][field] != current["metadata"][field] {
            return Err(ApiError::BadRequest(format!(
                "metadata.{field}: the {field} of the object ({}) does not match the {field} on the URL ({})",
                patched["metadata"][field].as_str().unwrap_or_default(),
                current["metadata"][field].as_str().unwrap_or_default(),
            )));
        }
    }
    if patched["metadata"]["uid"] != current["metadata"]["uid"] {
        return Err(ApiError::Conflict {
            message: format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                patched["metadata"]["uid"].as_str().unwrap_or_default(),
                current["metadata"]["uid"].as_str().unwrap_or_default()
            ),
            subject: super::error::Subject::resource(target.resource, target.name_or_empty()),
        });
    }
    Ok(())
}

/// PATCH of the main resource (`status_only` false) or of its `status`
/// subresource (`status_only` true).
pub fn patch(
    app: &AppState,
    target: &Target,
    params: &Params,
    content_type: Option<&str>,
    body: &[u8],
    status_only: bool,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let patch_kind = PatchKind::from_content_type(content_type, resource.builtin)?;
    if patch_kind == PatchKind::Apply {
        return apply::apply(app, target, params, body, status_only);
    }
    let patched = write::modify(app, target, params.dry_run()?, |current| {
        let patched = apply_body(patch_kind, resource.kind, current, body)?;
        check_identity_kept(target, current, &patched)?;
        check_precondition(target, &patched, current)?;
        if status_only {
            let mut next = current.clone();
            next["status"] = patched.get("status").cloned().unwrap_or(Value::Null);
            return Ok(next);
        }
        let mut next = patched;
        keep_status(resource, current, &mut next);
        Ok(next)
    })?;
    Ok(axum::Json(patched).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_patch_kinds() {
        let kind = |ct, builtin| PatchKind::from_content_type(Some(ct), builtin);
        assert_eq!(
            kind("application/merge-patch+json", true).unwrap(),
            PatchKind::Merge
        );
        assert_eq!(
            kind("application/json-patch+json; charset=utf-8", true).unwrap(),
            PatchKind::Json
        );
        assert_eq!(
            kind("application/strategic-merge-patch+json", true).unwrap(),
            PatchKind::Strategic
        );
        assert_eq!(
            kind("application/apply-patch+yaml", false).unwrap(),
            PatchKind::Apply
        );
    }

    #[test]
    fn strategic_patch_of_custom_resource_is_unsupported() {
        let error =
            PatchKind::from_content_type(Some("application/strategic-merge-patch+json"), false)
                .unwrap_err();
        assert_eq!(error.code(), 415);
        assert_eq!(error.reason(), "UnsupportedMediaType");
    }
}
