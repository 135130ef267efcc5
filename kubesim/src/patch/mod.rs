//! The three PATCH formats of the Kubernetes API, as pure functions on JSON.
//!
//! - [`merge`]: JSON Merge Patch (RFC 7386), `application/merge-patch+json`.
//! - [`json`]: JSON Patch (RFC 6902), `application/json-patch+json`.
//! - [`strategic`]: strategic merge patch,
//!   `application/strategic-merge-patch+json`, which kubectl sends by default
//!   for built-in kinds.
//!
//! None of them touch the store: the caller reads the object, applies the
//! patch to a copy and writes the result back.

use serde_json::Value;

pub mod json;
pub mod merge;
pub mod strategic;

/// A patch that could not be applied. JSON Patch variants carry the 0-based
/// index of the failing operation and its JSON Pointer. Strategic merge
/// patch variants carry the dotted field path, such as
/// `spec.template.spec.containers`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    #[error("JSON patch must be an array of operations, got {found}")]
    OperationsNotArray { found: &'static str },

    #[error("JSON patch operation {index} must be an object, got {found}")]
    OperationNotObject { index: usize, found: &'static str },

    #[error("JSON patch operation {index} ({op}): missing member \"{member}\"")]
    MissingMember {
        index: usize,
        op: String,
        member: &'static str,
    },

    #[error(
        "JSON patch operation {index}: unknown op \"{op}\", expected add, remove, replace, move, copy or test"
    )]
    UnknownOperation { index: usize, op: String },

    #[error("JSON patch operation {index} ({op}): invalid JSON pointer \"{pointer}\": {reason}")]
    InvalidPointer {
        index: usize,
        op: String,
        pointer: String,
        reason: &'static str,
    },

    #[error("JSON patch operation {index} ({op}): path \"{path}\" does not exist")]
    PathNotFound {
        index: usize,
        op: String,
        path: String,
    },

    #[error(
        "JSON patch operation {index} ({op}): index in \"{path}\" is out of range for an array of length {len}"
    )]
    IndexOutOfRange {
        index: usize,
        op: String,
        path: String,
        len: usize,
    },

    #[error(
        "JSON patch operation {index} (test): value at \"{path}\" is {actual}, expected {expected}"
    )]
    TestFailed {
        index: usize,
        path: String,
        expected: Value,
        actual: Value,
    },

    #[error(
        "JSON patch operation {index} (move): cannot move \"{from}\" into its own child \"{path}\""
    )]
    MoveIntoChild {
        index: usize,
        from: String,
        path: String,
    },

    #[error("JSON patch operation {index} (remove): the document root cannot be removed")]
    RemoveRoot { index: usize },

    #[error("strategic merge patch must be a JSON object, got {found}")]
    StrategicNotObject { found: &'static str },

    #[error(
        "strategic merge patch at {path}: invalid $patch directive {value}, expected replace, merge or delete"
    )]
    UnknownPatchDirective { path: String, value: Value },

    #[error("strategic merge patch at {path}: {directive} must be {expected}")]
    InvalidDirectiveValue {
        path: String,
        directive: String,
        expected: &'static str,
    },

    #[error("strategic merge patch at {path}: list element has no merge key \"{key}\"")]
    MissingMergeKey { path: String, key: &'static str },

    #[error(
        "strategic merge patch at {path}: key \"{key}\" is set by the patch but not listed in $retainKeys"
    )]
    KeyNotRetained { path: String, key: String },

    #[error(
        "strategic merge patch at {path}: the order of the elements in the patch does not match $setElementOrder/{field}"
    )]
    ElementOrderMismatch { path: String, field: String },

    #[error("strategic merge patch at {path}: list elements must all be {expected}")]
    ListElementType {
        path: String,
        expected: &'static str,
    },
}

/// Returns the JSON type name of `value`, for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
