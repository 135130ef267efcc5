//! Create, update and delete, and the read-modify-write step that update,
//! PATCH and the subresources share.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{self, ApiError};
use super::read::{self, Selectors};
use super::request::{Params, Target};
use super::validate;
use crate::registry::{self, ResourceType};

/// Metadata the server sets; a client's values are dropped on create.
const SERVER_SET_METADATA: [&str; 6] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Parses a request body as a JSON object (400 otherwise).
pub fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

/// 404 unless the target's namespace exists. Lists and reads of a missing
/// namespace are empty or NotFound anyway; writes need this check.
pub fn require_namespace(app: &AppState, target: &Target) -> Result<(), ApiError> {
    let Some(namespace) = target.namespace.as_deref() else {
        return Ok(());
    };
    let namespaces = registry::find("", "v1", "namespaces").expect("namespaces are registered");
    match app.cluster.store.get(&namespaces.key(), "", namespace) {
        Some(_) => Ok(()),
        None => Err(ApiError::namespace_not_found(namespace)),
    }
}

/// Checks `apiVersion`, `kind` and `metadata.namespace` of a body against
/// the URL and fills them in where missing.
pub fn check_identity(
    resource: &ResourceType,
    target: &Target,
    object: &mut Value,
) -> Result<(), ApiError> {
    let api_version = resource.api_version();
    match object["apiVersion"].as_str() {
        None | Some("") => object["apiVersion"] = json!(api_version),
        Some(found) if found == api_version => {}
        Some(found) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({found}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match object["kind"].as_str() {
        None | Some("") => object["kind"] = json!(resource.kind),
        Some(found) if found == resource.kind => {}
        Some(found) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({found}) does not match the expected kind ({})",
                resource.kind
            )));
        }
    }
    if object.get("metadata").is_none_or(Value::is_null) {
        object["metadata"] = json!({});
    }
    let url_namespace = target.namespace_or_empty();
    match object["metadata"]["namespace"].as_str() {
        None | Some("") => {}
        Some(found) if found == url_namespace => {}
        Some(_) if !resource.namespaced => {
            // Cluster-scoped objects carry no namespace.
            object["metadata"]
                .as_object_mut()
                .map(|m| m.remove("namespace"));
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
    }
    Ok(())
}

pub fn create(
    app: &AppState,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let mut object = parse_object(body)?;
    check_identity(resource, target, &mut object)?;
    require_namespace(app, target)?;
    let created = insert(app, target, object, params.dry_run()?)?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Validates and stores a new object (or, for a dry run, returns what would
/// be stored).
pub fn insert(
    app: &AppState,
    target: &Target,
    mut object: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let resource = target.resource;
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for field in SERVER_SET_METADATA {
            metadata.remove(field);
        }
    }
    reset_status(resource, &mut object);
    validate::check(resource, &object, None)?;
    let namespace = target.namespace_or_empty();
    if dry_run {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !name.is_empty()
            && app
                .cluster
                .store
                .get(&resource.key(), namespace, &name)
                .is_some()
        {
            return Err(ApiError::from_store(
                crate::store::StoreError::AlreadyExists {
                    resource: String::new(),
                    name,
                },
                resource,
            ));
        }
        if !namespace.is_empty() {
            object["metadata"]["namespace"] = json!(namespace);
        }
        object["metadata"]["creationTimestamp"] =
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        return Ok(object);
    }
    app.cluster
        .store
        .create(&resource.key(), namespace, object)
        .map_err(|e| ApiError::from_store(e, resource))
}

/// Replaces the status of a new object with the initial one, because a real
/// server ignores `.status` in creates of resources with a `status`
/// subresource.
fn reset_status(resource: &ResourceType, object: &mut Value) {
    if resource.subresource("status").is_none() {
        return;
    }
    let initial = match (resource.group, resource.kind) {
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "Pod") => json!({"phase": "Pending"}),
        _ => Value::Null,
    };
    match object.as_object_mut() {
        Some(map) if initial.is_null() => {
            map.remove("status");
        }
        Some(map) => {
            map.insert("status".into(), initial);
        }
        None => {}
    }
}

/// Read-modify-write of the target object under the store lock: `change`
/// gets the stored object and returns the new one, which is validated and
/// stored. With `dry_run` the result is returned without being stored.
/// Server-owned metadata (uid, creationTimestamp, name, namespace) is kept
/// and resourceVersion and generation are advanced by the store.
pub fn modify<F>(
    app: &AppState,
    target: &Target,
    dry_run: bool,
    change: F,
) -> Result<Value, ApiError>
where
    F: FnOnce(&Value) -> Result<Value, ApiError>,
{
    let resource = target.resource;
    let key = resource.key();
    let namespace = target.namespace_or_empty();
    let name = target.name_or_empty();
    let store = &app.cluster.store;
    let produce = |current: &Value| -> Result<Value, ApiError> {
        let mut next = change(current)?;
        for field in ["uid", "creationTimestamp", "name", "namespace"] {
            match current["metadata"].get(field) {
                Some(value) => next["metadata"][field] = value.clone(),
                None => {
                    next["metadata"].as_object_mut().map(|m| m.remove(field));
                }
            }
        }
        validate::check(resource, &next, Some(current))?;
        Ok(next)
    };
    if dry_run {
        let current = store
            .get(&key, namespace, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        return produce(&current);
    }
    let mut outcome = Ok(());
    let stored = store
        .modify(&key, namespace, name, |object| match produce(object) {
            Ok(next) => *object = next,
            Err(e) => outcome = Err(e),
        })
        .map_err(|e| ApiError::from_store(e, resource))?;
    outcome.map(|()| stored)
}

/// 409 Conflict when the body names a resourceVersion other than the stored one.
pub fn check_precondition(target: &Target, body: &Value, current: &Value) -> Result<(), ApiError> {
    let wanted = body["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if !wanted.is_empty() && wanted != current["metadata"]["resourceVersion"] {
        return Err(ApiError::conflict(target.resource, target.name_or_empty()));
    }
    Ok(())
}

/// 400 when a body renames the object.
pub fn check_name(target: &Target, body: &Value) -> Result<(), ApiError> {
    let name = target.name_or_empty();
    match body["metadata"]["name"].as_str() {
        Some(found) if !found.is_empty() && found != name => Err(ApiError::BadRequest(format!(
            "the name of the object ({found}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

/// Writes to the main resource leave `.status` alone when the resource has
/// a `status` subresource, as on a real server.
pub fn keep_status(resource: &ResourceType, current: &Value, next: &mut Value) {
    if resource.subresource("status").is_none() {
        return;
    }
    match current.get("status") {
        Some(status) => next["status"] = status.clone(),
        None => {
            next.as_object_mut().map(|m| m.remove("status"));
        }
    }
}

pub fn update(
    app: &AppState,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let mut object = parse_object(body)?;
    check_identity(resource, target, &mut object)?;
    check_name(target, &object)?;
    let updated = modify(app, target, params.dry_run()?, |current| {
        check_precondition(target, &object, current)?;
        let mut next = object;
        keep_status(resource, current, &mut next);
        // The store keeps the stored managedFields unless the body sets them.
        if next["metadata"].get("managedFields").is_none()
            && let Some(fields) = current["metadata"].get("managedFields")
        {
            next["metadata"]["managedFields"] = fields.clone();
        }
        Ok(next)
    })?;
    Ok(axum::Json(updated).into_response())
}

/// PUT to the `status` subresource: replaces `.status` only.
pub fn update_status(
    app: &AppState,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let object = parse_object(body)?;
    check_name(target, &object)?;
    let updated = modify(app, target, params.dry_run()?, |current| {
        check_precondition(target, &object, current)?;
        let mut next = current.clone();
        next["status"] = object.get("status").cloned().unwrap_or(Value::Null);
        Ok(next)
    })?;
    Ok(axum::Json(updated).into_response())
}

pub fn delete(
    app: &AppState,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        parse_object(body)?
    };
    let dry_run = params.dry_run()? || options["dryRun"].as_array().is_some_and(|v| !v.is_empty());
    let current = read::fetch(app, target)?;
    let preconditions = &options["preconditions"];
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(wanted) = preconditions[field].as_str()
            && wanted != current["metadata"][field]
        {
            return Err(ApiError::Conflict {
                message: format!(
                    "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {}",
                    current["metadata"][field].as_str().unwrap_or_default()
                ),
                subject: error::Subject::resource(resource, target.name_or_empty()),
            });
        }
    }
    let deleted = if dry_run {
        current
    } else {
        let deleted = app
            .cluster
            .store
            .delete(
                &resource.key(),
                target.namespace_or_empty(),
                target.name_or_empty(),
            )
            .map_err(|e| ApiError::from_store(e, resource))?;
        let policy = params
            .get("propagationPolicy")
            .or(options["propagationPolicy"].as_str())
            .unwrap_or("Background");
        if policy != "Orphan"
            && let Some(uid) = deleted["metadata"]["uid"].as_str()
        {
            delete_dependents(app, target.namespace_or_empty(), uid);
        }
        deleted
    };
    // Pods are deleted gracefully on a real server, which returns the pod;
    // other resources return a success Status.
    let body = if resource.kind == "Pod" {
        deleted
    } else {
        error::success_status(resource, &deleted)
    };
    Ok(axum::Json(body).into_response())
}

/// Garbage collection: deletes objects in `namespace` owned by `uid`, and
/// their dependents in turn.
fn delete_dependents(app: &AppState, namespace: &str, uid: &str) {
    let mut owners = vec![uid.to_string()];
    while let Some(owner) = owners.pop() {
        for resource in registry::RESOURCES
            .iter()
            .filter(|r| !registry::is_computed(r))
        {
            let (objects, _) = app.cluster.store.list(&resource.key(), Some(namespace));
            for object in objects {
                let owned = object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner.as_str()));
                if !owned {
                    continue;
                }
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                if let Ok(deleted) = app.cluster.store.delete(&resource.key(), namespace, name) {
                    tracing::debug!(
                        resource = resource.plural,
                        namespace,
                        name,
                        "deleted dependent"
                    );
                    if let Some(uid) = deleted["metadata"]["uid"].as_str() {
                        owners.push(uid.to_string());
                    }
                }
            }
        }
    }
}

/// DELETE on a collection URL: deletes every object the selectors match and
/// returns them as a list.
pub fn delete_collection(
    app: &AppState,
    target: &Target,
    params: &Params,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let selectors = Selectors::from_params(params, resource)?;
    let dry_run = params.dry_run()?;
    let (objects, _) = read::select(app, resource, target.namespace.as_deref(), &selectors);
    let mut deleted = Vec::new();
    for object in objects {
        if dry_run {
            deleted.push(object);
            continue;
        }
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        // An object deleted concurrently is simply no longer there.
        if let Ok(gone) = app.cluster.store.delete(&resource.key(), namespace, name) {
            deleted.push(gone);
        }
    }
    Ok(axum::Json(json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": app.cluster.store.resource_version().to_string()},
        "items": deleted,
    }))
    .into_response())
}
