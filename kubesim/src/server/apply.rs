//! Server-side apply (`PATCH` with `application/apply-patch+yaml`).
//!
//! The applied configuration is merged into the stored object like a JSON
//! merge patch, the object is created when absent, and the field manager is
//! recorded in `metadata.managedFields` with the fields it set.
//! NOTE: field ownership is recorded but not enforced, so applies by
//! different managers never conflict, with or without `force=true`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{ApiError, FieldCause, Subject};
use super::request::{Params, Target};
use super::write::{self, check_name, check_precondition, keep_status};
use crate::patch;

pub fn apply(
    app: &AppState,
    target: &Target,
    params: &Params,
    body: &[u8],
    status_only: bool,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let manager = field_manager(params)?;
    let mut applied = parse_configuration(body)?;
    write::check_identity(resource, target, &mut applied)?;
    check_name(target, &applied)?;
    let dry_run = params.dry_run()?;
    let entry = managed_fields_entry(&manager, &resource.api_version(), &applied, status_only);

    let exists = app
        .cluster
        .store
        .get(
            &resource.key(),
            target.namespace_or_empty(),
            target.name_or_empty(),
        )
        .is_some();
    if !exists {
        if status_only {
            return Err(ApiError::not_found(resource, target.name_or_empty()));
        }
        write::require_namespace(app, target)?;
        let mut object = applied;
        object["metadata"]["name"] = json!(target.name_or_empty());
        object["metadata"]["managedFields"] = json!([entry]);
        let created = write::insert(app, target, object, dry_run)?;
        return Ok((StatusCode::CREATED, axum::Json(created)).into_response());
    }

    let updated = write::modify(app, target, dry_run, |current| {
        check_precondition(target, &applied, current)?;
        let mut configuration = applied.clone();
        configuration["metadata"]
            .as_object_mut()
            .map(|m| m.remove("managedFields"));
        let merged = patch::merge::apply(current, &configuration);
        let mut next = if status_only {
            let mut next = current.clone();
            next["status"] = merged.get("status").cloned().unwrap_or(Value::Null);
            next
        } else {
            let mut next = merged;
            keep_status(resource, current, &mut next);
            next
        };
        next["metadata"]["managedFields"] =
            record_manager(&current["metadata"]["managedFields"], entry);
        Ok(next)
    })?;
    Ok(axum::Json(updated).into_response())
}

/// Reads the `fieldManager` parameter, which server-side apply requires (422
/// when missing).
pub fn field_manager(params: &Params) -> Result<String, ApiError> {
    if let Some(manager) = params.non_empty("fieldManager") {
        return Ok(manager.to_string());
    }
    let cause = FieldCause::required("fieldManager", "is required for apply patch");
    Err(ApiError::Invalid {
        message: format!(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: {}",
            cause.message
        ),
        subject: Subject {
            group: "meta.k8s.io".into(),
            kind: "PatchOptions".into(),
            name: String::new(),
        },
        causes: vec![cause],
    })
}

/// Parses an apply body: JSON (what kube-rs and kubectl send) or YAML.
fn parse_configuration(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => {
            let text = std::str::from_utf8(body).map_err(|_| {
                ApiError::BadRequest("the apply configuration is not UTF-8 text".into())
            })?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the apply configuration is neither JSON nor YAML: {e}"
                ))
            })?
        }
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the apply configuration must be an object".into(),
        ));
    }
    Ok(value)
}

/// Replaces the entry of the same manager and operation, keeping the others.
fn record_manager(existing: &Value, entry: Value) -> Value {
    let mut entries: Vec<Value> = existing
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            !(e["manager"] == entry["manager"]
                && e["operation"] == "Apply"
                && e["subresource"] == entry["subresource"])
        })
        .cloned()
        .collect();
    entries.push(entry);
    Value::Array(entries)
}

fn managed_fields_entry(
    manager: &str,
    api_version: &str,
    applied: &Value,
    status_only: bool,
) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(applied, true),
    });
    if status_only {
        entry["subresource"] = json!("status");
    }
    entry
}

/// The FieldsV1 set of an applied configuration: `f:<field>` for object
/// fields, `k:{"name":...}` for list items keyed by name, `.` for an item
/// itself. Identity fields (apiVersion, kind, name, namespace) are left out.
fn fields_v1(value: &Value, top: bool) -> Value {
    let Value::Object(map) = value else {
        return json!({});
    };
    let mut out = Map::new();
    for (key, child) in map {
        if top && matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        if key == "metadata" && top {
            let mut metadata = child.clone();
            if let Some(m) = metadata.as_object_mut() {
                for identity in [
                    "name",
                    "namespace",
                    "managedFields",
                    "resourceVersion",
                    "uid",
                ] {
                    m.remove(identity);
                }
            }
            if metadata.as_object().is_some_and(|m| !m.is_empty()) {
                out.insert("f:metadata".into(), fields_v1(&metadata, false));
            }
            continue;
        }
        let set = match child {
            Value::Object(_) => fields_v1(child, false),
            Value::Array(items)
                if items.iter().all(|i| i["name"].is_string()) && !items.is_empty() =>
            {
                let mut keyed = Map::new();
                for item in items {
                    let mut fields = fields_v1(item, false);
                    fields[".".to_string()] = json!({});
                    keyed.insert(format!("k:{}", json!({"name": item["name"]})), fields);
                }
                Value::Object(keyed)
            }
            _ => json!({}),
        };
        out.insert(format!("f:{key}"), set);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_names_applied_fields() {
        let applied = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "synapse", "labels": {"app": "synapse"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "synapse", "image": "s:2"}]}}},
        });
        let fields = fields_v1(&applied, true);
        assert_eq!(fields["f:metadata"], json!({"f:labels": {"f:app": {}}}));
        assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
        let container =
            &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"synapse\"}"];
        assert_eq!(container, &json!({".": {}, "f:name": {}, "f:image": {}}));
    }

    #[test]
    fn parses_yaml_configuration() {
        let yaml = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: synapse\nspec:\n  replicas: 4\n";
        let parsed = parse_configuration(yaml).unwrap();
        assert_eq!(parsed["spec"]["replicas"], 4);
    }

    #[test]
    fn record_manager_replaces_own_entry() {
        let existing = json!([{"manager": "bot", "operation": "Apply"}, {"manager": "kubectl", "operation": "Update"}]);
        let entry = json!({"manager": "bot", "operation": "Apply", "time": "t2"});
        let recorded = record_manager(&existing, entry);
        assert_eq!(recorded.as_array().unwrap().len(), 2);
        assert_eq!(recorded[1]["time"], "t2");
    }
}
