//! API errors and their wire form, the `meta.k8s.io/v1` `Status` object.
//!
//! Every failing request ends here, so clients (kubectl, kube-rs) see the
//! same `reason`, `code` and `details` a real API server sends.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::store::StoreError;

/// One invalid field, as listed in `details.causes` of a 422 response.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    /// Field path such as `spec.template.spec.containers[0].image`.
    pub field: String,
    /// Text after the field path, such as `Invalid value: -1: must be greater than or equal to 0`.
    pub message: String,
}

impl FieldCause {
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}: {detail}", go_value(value)),
        }
    }

    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message,
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {detail}"),
        }
    }
}

/// Renders a value the way the API server prints it in validation messages:
/// strings quoted, numbers bare.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Identity of the object a failure is about, for `details`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub group: String,
    /// Plural resource name for most reasons; the kind for `Invalid`.
    pub kind: String,
    pub name: String,
}

impl Subject {
    pub fn resource(resource: &ResourceType, name: &str) -> Self {
        Self {
            group: resource.group.to_string(),
            kind: resource.plural.to_string(),
            name: name.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    NotFound { message: String, subject: Subject },
    #[error("{message}")]
    AlreadyExists { message: String, subject: Subject },
    #[error("{message}")]
    Conflict { message: String, subject: Subject },
    #[error("{message}")]
    Invalid {
        message: String,
        subject: Subject,
        causes: Vec<FieldCause>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A watch resumed from a resourceVersion older than the kept history.
    /// `current` is the store's resourceVersion at the time.
    #[error("too old resource version: {requested} ({current})")]
    Expired { requested: u64, current: u64 },
    /// An error the fault plan injected, with its HTTP status code.
    #[error("{message}")]
    Injected {
        code: u16,
        message: String,
        subject: Subject,
    },
}

impl ApiError {
    pub fn not_found(resource: &ResourceType, name: &str) -> Self {
        Self::NotFound {
            message: format!("{} \"{name}\" not found", qualified_resource(resource)),
            subject: Subject::resource(resource, name),
        }
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::NotFound {
            message: format!("namespaces \"{namespace}\" not found"),
            subject: Subject {
                group: String::new(),
                kind: "namespaces".into(),
                name: namespace.to_string(),
            },
        }
    }

    pub fn conflict(resource: &ResourceType, name: &str) -> Self {
        Self::Conflict {
            message: StoreError::Conflict {
                resource: qualified_resource(resource),
                name: name.to_string(),
            }
            .to_string(),
            subject: Subject::resource(resource, name),
        }
    }

    pub fn invalid(resource: &ResourceType, name: &str, causes: Vec<FieldCause>) -> Self {
        let kind = qualified_kind(resource);
        let listed: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = if listed.len() == 1 {
            format!("{kind} \"{name}\" is invalid: {}", listed[0])
        } else {
            format!("{kind} \"{name}\" is invalid: [{}]", listed.join(", "))
        };
        Self::Invalid {
            message,
            subject: Subject {
                group: resource.group.to_string(),
                kind: resource.kind.to_string(),
                name: name.to_string(),
            },
            causes,
        }
    }

    /// Maps a store failure on `resource` to its API error.
    pub fn from_store(error: StoreError, resource: &ResourceType) -> Self {
        match error {
            StoreError::NotFound { name, .. } => Self::not_found(resource, &name),
            StoreError::AlreadyExists { name, .. } => Self::AlreadyExists {
                message: format!("{} \"{name}\" already exists", qualified_resource(resource)),
                subject: Subject::resource(resource, &name),
            },
            StoreError::Conflict { name, .. } => Self::conflict(resource, &name),
            StoreError::Invalid(message) => Self::Invalid {
                message: format!("{} is invalid: {message}", qualified_kind(resource)),
                subject: Subject {
                    group: resource.group.to_string(),
                    kind: resource.kind.to_string(),
                    name: String::new(),
                },
                causes: Vec::new(),
            },
        }
    }

    /// Builds the error the fault plan asked for: the same reason and message
    /// shape a real server uses for that code.
    pub fn injected(code: u16, verb: &str, resource: Option<(&ResourceType, &str, &str)>) -> Self {
        let (subject, what) = match resource {
            Some((r, namespace, name)) => {
                let what = match (name.is_empty(), namespace.is_empty()) {
                    (true, true) => qualified_resource(r),
                    (true, false) => {
                        format!("{} in namespace {namespace:?}", qualified_resource(r))
                    }
                    (false, _) => format!("{} {name:?}", qualified_resource(r)),
                };
                (Subject::resource(r, name), what)
            }
            None => (Subject::default(), "the request".to_string()),
        };
        let message = match code {
            403 => format!(
                "{what} is forbidden: User \"system:anonymous\" cannot {verb} resource \"{}\"",
                subject.kind
            ),
            409 => format!(
                "Operation cannot be fulfilled on {what}: the object has been modified; please apply your changes to the latest version and try again"
            ),
            429 => "Too many requests, please try again later.".to_string(),
            500 => format!("Internal error occurred: injected failure serving {what}"),
            503 => "the server is currently unable to handle the request".to_string(),
            _ => format!("injected failure serving {what}"),
        };
        Self::Injected {
            code,
            message,
            subject,
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) => 400,
            Self::UnsupportedMediaType(_) => 415,
            Self::MethodNotAllowed(_) => 405,
            Self::ServiceUnavailable(_) => 503,
            Self::Expired { .. } => 410,
            Self::Injected { code, .. } => *code,
        }
    }

    /// Returns the `reason` field of the Status object.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
            Self::Expired { .. } => "Expired",
            Self::Injected { code, .. } => reason_for_code(*code),
        }
    }

    /// Renders the error as a `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let subject = match self {
            Self::NotFound { subject, .. }
            | Self::AlreadyExists { subject, .. }
            | Self::Conflict { subject, .. }
            | Self::Invalid { subject, .. }
            | Self::Injected { subject, .. } => Some(subject),
            _ => None,
        };
        if let Some(subject) = subject {
            let mut details = serde_json::Map::new();
            if !subject.name.is_empty() {
                details.insert("name".into(), json!(subject.name));
            }
            if !subject.group.is_empty() {
                details.insert("group".into(), json!(subject.group));
            }
            if !subject.kind.is_empty() {
                details.insert("kind".into(), json!(subject.kind));
            }
            if let Self::Invalid { causes, .. } = self {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                details.insert("causes".into(), json!(causes));
            }
            if self.code() == 429 {
                details.insert("retryAfterSeconds".into(), json!(RETRY_AFTER_SECONDS));
            }
            if !details.is_empty() {
                status["details"] = Value::Object(details);
            }
        }
        status
    }
}

/// Seconds a client should wait after 429 TooManyRequests (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u64 = 1;

fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// `deployments.apps` for grouped resources, `pods` for the core group.
pub fn qualified_resource(resource: &ResourceType) -> String {
    if resource.group.is_empty() {
        resource.plural.to_string()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// `Deployment.apps` for grouped kinds, `Pod` for the core group.
pub fn qualified_kind(resource: &ResourceType) -> String {
    if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code.is_server_error() {
            tracing::warn!(code = code.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(code = code.as_u16(), error = %self, "request rejected");
        }
        let mut response = (code, axum::Json(self.to_status())).into_response();
        if code == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// A `Status` object reporting success, as DELETE returns for most resources.
pub fn success_status(resource: &ResourceType, object: &Value) -> Value {
    let metadata = &object["metadata"];
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": metadata["name"],
            "group": resource.group,
            "kind": resource.plural,
            "uid": metadata["uid"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn not_found_status_names_resource_and_group() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let status = ApiError::not_found(deployments, "synapse").to_status();
        assert_eq!(status["message"], "deployments.apps \"synapse\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(
            status["details"],
            json!({"name": "synapse", "group": "apps", "kind": "deployments"})
        );
    }

    #[test]
    fn invalid_status_lists_each_cause() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let causes = vec![FieldCause::invalid(
            "spec.replicas",
            &json!(-1),
            "must be greater than or equal to 0",
        )];
        let status = ApiError::invalid(deployments, "synapse", causes).to_status();
        assert_eq!(
            status["message"],
            "Deployment.apps \"synapse\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(status["details"]["kind"], "Deployment");
        assert_eq!(status["details"]["causes"][0]["field"], "spec.replicas");
    }

    #[test]
    fn injected_429_carries_retry_after() {
        let status = ApiError::injected(429, "patch", None).to_status();
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(status["details"]["retryAfterSeconds"], 1);
    }
}
