//! `/version` and API discovery, generated from [`registry::RESOURCES`].
//!
//! Two discovery forms exist. kubectl 1.26+ and kube-rs ask `/api` and
//! `/apis` for the aggregated form (`APIGroupDiscoveryList`) through the
//! Accept header and fall back to the legacy form (`APIVersions`,
//! `APIGroupList`, then one `APIResourceList` per group version).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::registry::{self, ResourceType, Subresource};

/// Version reported by `/version`. kubectl's version dispatcher picks the
/// client binary matching this minor version.
const GIT_VERSION: &str = "v1.32.4";

/// Aggregated discovery versions this server speaks, newest first.
const AGGREGATED_VERSIONS: [&str; 2] = ["v2", "v2beta1"];

pub async fn version() -> Response {
    axum::Json(json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:03:43Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
    .into_response()
}

/// Finds the aggregated discovery version the Accept header requests, if any:
/// `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`.
fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for media_range in accept.split(',') {
        let params: Vec<&str> = media_range.split(';').map(str::trim).collect();
        if params.first() != Some(&"application/json")
            || !params.contains(&"g=apidiscovery.k8s.io")
            || !params.contains(&"as=APIGroupDiscoveryList")
        {
            continue;
        }
        let found = AGGREGATED_VERSIONS
            .into_iter()
            .find(|v| params.contains(&format!("v={v}").as_str()));
        if found.is_some() {
            return found;
        }
    }
    None
}

fn aggregated_response(version: &'static str, items: Vec<Value>) -> Response {
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let content_type =
        format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("content type is ASCII"),
    );
    response
}

/// `GET /api`: the core group.
pub async fn core_versions(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(version) = aggregated_version(&headers) {
        return aggregated_response(version, vec![aggregated_group("")]);
    }
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": app.address.to_string()}
        ],
    }))
    .into_response()
}

/// `GET /apis`: every named group.
pub async fn groups(headers: HeaderMap) -> Response {
    let named: Vec<&str> = registry::groups()
        .into_iter()
        .map(|(group, _)| group)
        .filter(|group| !group.is_empty())
        .collect();
    if let Some(version) = aggregated_version(&headers) {
        let items = named.iter().map(|group| aggregated_group(group)).collect();
        return aggregated_response(version, items);
    }
    let groups: Vec<Value> = named.iter().map(|group| group_object(group)).collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        .into_response()
}

/// `GET /apis/{group}`.
pub async fn group(Path(group): Path<String>) -> Response {
    if !registry::groups()
        .iter()
        .any(|(g, _)| *g == group && !g.is_empty())
    {
        return not_found_page();
    }
    axum::Json(group_object(&group)).into_response()
}

/// `GET /api/v1` and `GET /apis/{group}/{version}`.
pub async fn resource_list(group: &str, version: &str) -> Response {
    let resources: Vec<&ResourceType> = registry::RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if resources.is_empty() {
        return not_found_page();
    }
    let mut entries = Vec::new();
    for resource in resources {
        entries.push(legacy_entry(resource));
        for subresource in resource.subresources {
            entries.push(legacy_subresource_entry(resource, subresource));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    axum::Json(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
    .into_response()
}

pub async fn core_resource_list() -> Response {
    resource_list("", "v1").await
}

pub async fn group_resource_list(Path((group, version)): Path<(String, String)>) -> Response {
    resource_list(&group, &version).await
}

/// 404 for paths that name no API, such as `/openapi/v2`. kubectl needs the
/// OpenAPI documents only for `explain` and client-side `apply`.
pub fn not_found_page() -> Response {
    ApiError::NotFound {
        message: "the server could not find the requested resource".into(),
        subject: Default::default(),
    }
    .into_response()
}

fn group_object(group: &str) -> Value {
    let versions: Vec<Value> = registry::groups()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

fn aggregated_group(group: &str) -> Value {
    let versions: Vec<Value> = registry::groups()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| {
            let resources: Vec<Value> = registry::RESOURCES
                .iter()
                .filter(|r| r.group == g && r.version == v)
                .map(aggregated_resource)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({"metadata": metadata, "versions": versions})
}

fn scope(resource: &ResourceType) -> &'static str {
    if resource.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    }
}

/// Group, version and kind a subresource returns. `status` returns the
/// parent's kind; the registry leaves those fields empty for it.
fn subresource_kind(
    resource: &ResourceType,
    subresource: &Subresource,
) -> (&'static str, &'static str, &'static str) {
    if subresource.kind.is_empty() {
        (resource.group, resource.version, resource.kind)
    } else {
        (subresource.group, subresource.version, subresource.kind)
    }
}

fn aggregated_resource(resource: &ResourceType) -> Value {
    let subresources: Vec<Value> = resource
        .subresources
        .iter()
        .map(|s| {
            let (group, version, kind) = subresource_kind(resource, s);
            json!({
                "subresource": s.name,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": scope(resource),
        "singularResource": resource.singular,
        "verbs": resource.verbs,
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

fn legacy_entry(resource: &ResourceType) -> Value {
    let mut entry = json!({
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": resource.verbs,
    });
    if !resource.short_names.is_empty() {
        entry["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        entry["categories"] = json!(resource.categories);
    }
    entry
}

fn legacy_subresource_entry(resource: &ResourceType, subresource: &Subresource) -> Value {
    let (group, version, kind) = subresource_kind(resource, subresource);
    let mut entry = json!({
        "name": format!("{}/{}", resource.plural, subresource.name),
        "singularName": "",
        "namespaced": resource.namespaced,
        "kind": kind,
        "verbs": subresource.verbs,
    });
    if group != resource.group || version != resource.version {
        entry["group"] = json!(group);
        entry["version"] = json!(version);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_version_prefers_v2() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
            ),
        );
        assert_eq!(aggregated_version(&headers), Some("v2"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert_eq!(aggregated_version(&headers), None);
    }

    #[test]
    fn scale_subresource_reports_autoscaling_kind() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let entry = aggregated_resource(deployments);
        let scale = entry["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let legacy =
            legacy_subresource_entry(deployments, deployments.subresource("scale").unwrap());
        assert_eq!(legacy["name"], "deployments/scale");
        assert_eq!(legacy["group"], "autoscaling");
    }
}
