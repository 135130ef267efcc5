//! GET of one object and of lists, with selectors, paging and the three
//! representations (objects, Table, PartialObjectMetadata).

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::request::{Params, Representation, Target};
use super::selector::{FieldSelector, LabelSelector};
use super::slices;
use super::table;
use crate::metrics;
use crate::registry::{self, ResourceType};

/// Label and field selector of a list or watch request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn from_params(params: &Params, resource: &ResourceType) -> Result<Self, ApiError> {
        Ok(Self {
            labels: LabelSelector::parse(params.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(params.get("fieldSelector").unwrap_or(""), resource)?,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches_object(object) && self.fields.matches(object)
    }

    fn is_empty(&self) -> bool {
        self.labels == LabelSelector::default() && self.fields == FieldSelector::default()
    }
}

/// Reads one object: from the store, or computed for metrics resources.
pub fn fetch(app: &AppState, target: &Target) -> Result<Value, ApiError> {
    let name = target.name_or_empty();
    let found = if registry::is_computed(target.resource) {
        computed(app, target.resource, target.namespace.as_deref())
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
    } else {
        app.cluster
            .store
            .get(&target.resource.key(), target.namespace_or_empty(), name)
    };
    found.ok_or_else(|| ApiError::not_found(target.resource, name))
}

pub fn get(
    app: &AppState,
    target: &Target,
    representation: Representation,
) -> Result<Response, ApiError> {
    let object = fetch(app, target)?;
    let body = match representation {
        Representation::Full => object,
        Representation::Metadata => table::partial_metadata(&object),
        Representation::Table(include) => {
            let metadata = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
            table::build(
                target.resource,
                std::slice::from_ref(&object),
                metadata,
                include,
            )
        }
    };
    Ok(axum::Json(body).into_response())
}

/// Objects of a resource in one namespace (or all), filtered by selectors,
/// with the resourceVersion of the snapshot.
pub fn select(
    app: &AppState,
    resource: &ResourceType,
    namespace: Option<&str>,
    selectors: &Selectors,
) -> (Vec<Value>, u64) {
    let (items, resource_version) = if registry::is_computed(resource) {
        (
            computed(app, resource, namespace),
            app.cluster.store.resource_version(),
        )
    } else {
        app.cluster.store.list(&resource.key(), namespace)
    };
    let items = items.into_iter().filter(|o| selectors.matches(o)).collect();
    (items, resource_version)
}

pub fn list(
    app: &AppState,
    target: &Target,
    params: &Params,
    representation: Representation,
) -> Result<Response, ApiError> {
    let selectors = Selectors::from_params(params, target.resource)?;
    let (items, resource_version) = select(
        app,
        target.resource,
        target.namespace.as_deref(),
        &selectors,
    );
    let page = Page::cut(items, params, resource_version)?;

    let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
        // A real server omits the count when selectors filter the list.
        if selectors.is_empty() {
            metadata["remainingItemCount"] = json!(page.remaining);
        }
    }
    let body = match representation {
        Representation::Table(include) => {
            table::build(target.resource, &page.items, metadata, include)
        }
        Representation::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": page.items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        Representation::Full => json!({
            "kind": format!("{}List", target.resource.kind),
            "apiVersion": target.resource.api_version(),
            "metadata": metadata,
            "items": page.items,
        }),
    };
    Ok(axum::Json(body).into_response())
}

/// One page of a list (`limit` and `continue`).
///
/// The continue token is `{resourceVersion}:{namespace}/{name}` of the last
/// object sent. The next page starts after that object in the store's
/// namespace/name order.
/// NOTE: later pages read the current state, not the snapshot of the first
/// page as a real server does.
struct Page {
    items: Vec<Value>,
    continue_token: Option<String>,
    remaining: usize,
    resource_version: u64,
}

impl Page {
    fn cut(items: Vec<Value>, params: &Params, current_version: u64) -> Result<Self, ApiError> {
        let mut resource_version = current_version;
        let mut items = items;
        if let Some(token) = params.non_empty("continue") {
            let invalid = || ApiError::BadRequest(format!("invalid continue token {token:?}"));
            let (version, position) = token.split_once(':').ok_or_else(invalid)?;
            let (namespace, name) = position.split_once('/').ok_or_else(invalid)?;
            resource_version = version.parse().map_err(|_| invalid())?;
            items.retain(|o| {
                let key = (
                    o["metadata"]["namespace"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default(),
                );
                key > (namespace, name)
            });
        }
        let limit = params.number("limit")?.unwrap_or(0) as usize;
        if limit == 0 || items.len() <= limit {
            return Ok(Self {
                items,
                continue_token: None,
                remaining: 0,
                resource_version,
            });
        }
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = &items[limit - 1]["metadata"];
        let token = format!(
            "{resource_version}:{}/{}",
            last["namespace"].as_str().unwrap_or_default(),
            last["name"].as_str().unwrap_or_default()
        );
        Ok(Self {
            items,
            continue_token: Some(token),
            remaining,
            resource_version,
        })
    }
}

/// Objects of a computed resource (metrics, EndpointSlices).
fn computed(app: &AppState, resource: &ResourceType, namespace: Option<&str>) -> Vec<Value> {
    match resource.kind {
        "PodMetrics" => metrics::pod_metrics(&app.cluster, namespace),
        "NodeMetrics" => metrics::node_metrics(&app.cluster),
        "EndpointSlice" => slices::endpoint_slices(&app.cluster.store, namespace),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(namespace: &str, name: &str) -> Value {
        json!({"metadata": {"namespace": namespace, "name": name}})
    }

    fn params(query: &str) -> Params {
        Params::from_uri(&format!("/x?{query}").parse().unwrap()).unwrap()
    }

    #[test]
    fn pages_continue_after_last_item() {
        let items = vec![named("a", "1"), named("a", "2"), named("b", "1")];
        let first = Page::cut(items.clone(), &params("limit=2"), 7).unwrap();
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.remaining, 1);
        let token = first.continue_token.unwrap();
        let second = Page::cut(items, &params(&format!("limit=2&continue={token}")), 9).unwrap();
        assert_eq!(second.items, vec![named("b", "1")]);
        assert!(second.continue_token.is_none());
        assert_eq!(second.resource_version, 7);
    }
}
