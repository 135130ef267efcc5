//! Parsing of resource URLs and query parameters.
//!
//! Resource URLs have the forms
//! `/api/v1/[namespaces/{ns}/]{plural}[/{name}[/{subresource}[/{path}]]]` and
//! `/apis/{group}/{version}/[namespaces/{ns}/]{plural}[/{name}[/...]]`.
//! `/api/v1/namespaces/{name}` is the Namespace object itself.

use axum::extract::Query;
use axum::http::Uri;

use super::error::ApiError;
use crate::registry::{self, ResourceType};

/// The object or collection a resource URL names.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static ResourceType,
    /// Namespace from the URL. `None` for cluster-scoped resources and for
    /// lists across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Port of a pod proxy request (`pods/{name}:{port}/proxy`).
    pub port: Option<String>,
    /// Rest of the path after `proxy`, with a leading `/`.
    pub subpath: String,
}

impl Target {
    /// Namespace of the object, empty for cluster-scoped resources.
    pub fn namespace_or_empty(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    pub fn name_or_empty(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// Parses the part of a resource URL after the group version.
pub fn parse_target(group: &str, version: &str, rest: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let not_found = || ApiError::NotFound {
        message: "the server could not find the requested resource".into(),
        subject: Default::default(),
    };
    let lookup = |plural: &str| registry::find(group, version, plural).ok_or_else(not_found);

    // `namespaces/{ns}/{plural}...` addresses a namespaced resource, except
    // `namespaces/{ns}` and `namespaces/{ns}/{subresource}` on the Namespace.
    let namespaced_form = segments.len() >= 3
        && segments[0] == "namespaces"
        && !is_namespace_subresource(group, segments[2]);
    let (namespace, rest) = if namespaced_form {
        (Some(segments[1].to_string()), &segments[2..])
    } else {
        (None, &segments[..])
    };
    let Some((&plural, rest)) = rest.split_first() else {
        return Err(not_found());
    };
    if plural.is_empty() {
        return Err(not_found());
    }
    let resource = lookup(plural)?;
    if namespace.is_some() && !resource.namespaced {
        return Err(not_found());
    }
    let mut target = Target {
        resource,
        namespace,
        name: None,
        subresource: None,
        port: None,
        subpath: String::new(),
    };
    if let Some((&name, rest)) = rest.split_first() {
        // A namespaced resource addressed without a namespace supports only
        // the list across all namespaces.
        if resource.namespaced && target.namespace.is_none() {
            return Err(not_found());
        }
        target.name = Some(name.to_string());
        if let Some((&subresource, rest)) = rest.split_first() {
            if resource.subresource(subresource).is_none() {
                return Err(not_found());
            }
            if subresource == "proxy" {
                if let Some((pod, port)) = name.split_once(':') {
                    target.name = Some(pod.to_string());
                    target.port = Some(port.to_string());
                }
                target.subpath = format!("/{}", rest.join("/"));
            } else if !rest.is_empty() {
                return Err(not_found());
            }
            target.subresource = Some(subresource.to_string());
        }
    }
    Ok(target)
}

fn is_namespace_subresource(group: &str, segment: &str) -> bool {
    group.is_empty() && matches!(segment, "status" | "finalize")
}

/// Decoded query parameters, in order, with repeats kept (`command=a&command=b`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
        Ok(Self { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Returns the value of `key` unless it is absent or empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Reads a boolean parameter: `true` or `1` (kubectl and kube-rs send both forms).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// `dryRun=All`. Any other value is rejected as by a real server.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let values = self.all("dryRun");
        for value in &values {
            if value != "All" {
                return Err(ApiError::BadRequest(format!(
                    "Invalid dry run value: {value:?}: supported value is \"All\""
                )));
            }
        }
        Ok(!values.is_empty())
    }

    /// Parses an unsigned integer parameter. Absent or empty gives `None`.
    pub fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("invalid value {text:?} for query parameter {key}: expected a non-negative integer"))
            }),
        }
    }
}

/// The rendering of objects that a request selects with its Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Full,
    /// A `meta.k8s.io/v1` Table, as `kubectl get` requests for printing.
    Table(IncludeObject),
    /// `PartialObjectMetadata`: only `metadata` (kube-rs `get_metadata`).
    Metadata,
}

/// The `includeObject` parameter of Table requests: what each row's
/// `object` field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl Representation {
    /// Picks the representation from the Accept header. The first media
    /// range naming `as=Table` or `as=PartialObjectMetadata[List]` wins;
    /// anything else gets plain JSON objects.
    pub fn from_request(accept: Option<&str>, params: &Params) -> Result<Self, ApiError> {
        let Some(accept) = accept else {
            return Ok(Self::Full);
        };
        for media_range in accept.split(',') {
            let parts: Vec<&str> = media_range.split(';').map(str::trim).collect();
            if parts.contains(&"as=Table") {
                let include = match params.get("includeObject") {
                    None | Some("") | Some("Metadata") => IncludeObject::Metadata,
                    Some("None") => IncludeObject::None,
                    Some("Object") => IncludeObject::Object,
                    Some(other) => {
                        return Err(ApiError::BadRequest(format!(
                            "invalid includeObject {other:?}: expected None, Metadata or Object"
                        )));
                    }
                };
                return Ok(Self::Table(include));
            }
            if parts.contains(&"as=PartialObjectMetadata")
                || parts.contains(&"as=PartialObjectMetadataList")
            {
                return Ok(Self::Metadata);
            }
        }
        Ok(Self::Full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_object_and_subresource() {
        let target = parse_target(
            "apps",
            "v1",
            "namespaces/butterfly/deployments/synapse/scale",
        )
        .unwrap();
        assert_eq!(target.resource.plural, "deployments");
        assert_eq!(target.namespace.as_deref(), Some("butterfly"));
        assert_eq!(target.name.as_deref(), Some("synapse"));
        assert_eq!(target.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn parses_namespace_object_and_all_namespace_list() {
        let namespace = parse_target("", "v1", "namespaces/butterfly").unwrap();
        assert_eq!(namespace.resource.plural, "namespaces");
        assert_eq!(namespace.name.as_deref(), Some("butterfly"));
        let pods = parse_target("", "v1", "pods").unwrap();
        assert_eq!(pods.resource.plural, "pods");
        assert!(pods.namespace.is_none());
        assert!(pods.name.is_none());
    }

    #[test]
    fn parses_pod_proxy_with_port_and_path() {
        let target = parse_target(
            "",
            "v1",
            "namespaces/butterfly/pods/synapse-0:8080/proxy/actuator/health",
        )
        .unwrap();
        assert_eq!(target.name.as_deref(), Some("synapse-0"));
        assert_eq!(target.port.as_deref(), Some("8080"));
        assert_eq!(target.subpath, "/actuator/health");
    }

    #[test]
    fn rejects_unknown_resource_and_subresource() {
        assert!(parse_target("apps", "v1", "namespaces/butterfly/widgets").is_err());
        assert!(parse_target("apps", "v1", "namespaces/butterfly/deployments/a/log").is_err());
        assert!(parse_target("", "v1", "pods/synapse-0").is_err());
    }
}
