//! Strategic merge patch, the default patch type of `kubectl patch`,
//! `kubectl set` and `kubectl apply` for built-in kinds.
//!
//! It extends JSON Merge Patch: lists that the API types tag as merge lists
//! (see [`schema`]) merge element by element on a merge key instead of being
//! replaced, and these directives steer the merge:
//!
//! - `$patch: replace` in an object replaces that object; as a list element
//!   it replaces the whole list with the other elements.
//! - `$patch: delete` in an object deletes that object; as a list element it
//!   deletes every element with the same merge key value.
//! - `$patch: merge` is the default and changes nothing.
//! - `$retainKeys: [..]` clears the keys of the object that it does not list.
//! - `$setElementOrder/<field>: [..]` orders the merged list `<field>`.
//! - `$deleteFromPrimitiveList/<field>: [..]` removes values from a list of
//!   primitives.
//! - A `null` value deletes the key.
//!
//! Other keys starting with `$` are dropped, as a real API server ignores
//! directives it does not know.

mod list;
mod schema;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::{PatchError, type_name};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies the strategic merge patch `patch` to `target`, an object of the
/// built-in kind `kind` (`Deployment`, `Service`, ...), and returns the
/// result. `$patch: delete` at the root yields an empty object.
pub fn apply(kind: &str, target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::StrategicNotObject {
            found: type_name(patch),
        });
    };
    let original = target.as_object().cloned().unwrap_or_default();
    let merger = Merger { kind };
    let merged = merger.merge_map(&[], original, patch)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// Dotted field path for error messages.
fn dotted(path: &[String]) -> String {
    if path.is_empty() {
        "(root)".to_string()
    } else {
        path.join(".")
    }
}

fn child_path(path: &[String], key: &str) -> Vec<String> {
    let mut child = path.to_vec();
    child.push(key.to_string());
    child
}

/// The `$patch` directive of an object or list element.
enum Directive {
    Merge,
    Replace,
    Delete,
}

fn directive(path: &[String], object: &Map<String, Value>) -> Result<Directive, PatchError> {
    match object.get(PATCH) {
        None => Ok(Directive::Merge),
        Some(Value::String(d)) if d == "merge" => Ok(Directive::Merge),
        Some(Value::String(d)) if d == "replace" => Ok(Directive::Replace),
        Some(Value::String(d)) if d == "delete" => Ok(Directive::Delete),
        Some(other) => Err(PatchError::UnknownPatchDirective {
            path: dotted(path),
            value: other.clone(),
        }),
    }
}

/// One patch application; `kind` selects the merge keys.
struct Merger<'k> {
    kind: &'k str,
}

impl Merger<'_> {
    /// Merges `patch` into `original`, the object at `path`. Returns `None`
    /// when the patch deletes the object.
    fn merge_map(
        &self,
        path: &[String],
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        match directive(path, patch)? {
            Directive::Delete => return Ok(None),
            Directive::Replace => {
                // The rest of the patch is taken literally; merging it into
                // an empty object strips nested directives and nulls.
                let mut literal = patch.clone();
                literal.remove(PATCH);
                return self.merge_map(path, Map::new(), &literal);
            }
            Directive::Merge => {}
        }
        retain_keys(path, &mut original, patch)?;
        let ordered = self.apply_element_orders(path, &mut original, patch)?;

        let mut deletions = Vec::new();
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                deletions.push((field, value));
                continue;
            }
            if key.starts_with('$') || ordered.contains(key) {
                continue;
            }
            self.merge_field(path, &mut original, key, value)?;
        }
        // Deletions run after the merge of the same list, as on a real API
        // server.
        for (field, values) in deletions {
            delete_from_primitive_list(path, &mut original, field, values)?;
        }
        Ok(Some(original))
    }

    /// Merges the patch value of one key into `original`.
    fn merge_field(
        &self,
        path: &[String],
        original: &mut Map<String, Value>,
        key: &str,
        patch_value: &Value,
    ) -> Result<(), PatchError> {
        let current = original.remove(key);
        let merged = match patch_value {
            Value::Null => None,
            Value::Object(patch) => {
                let base = match current {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                self.merge_map(&child_path(path, key), base, patch)?
                    .map(Value::Object)
            }
            Value::Array(patch) => {
                let base = match current {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                Some(Value::Array(self.merge_list(
                    path,
                    key,
                    base,
                    Some(patch),
                    None,
                )?))
            }
            scalar => Some(scalar.clone()),
        };
        if let Some(value) = merged {
            original.insert(key.to_string(), value);
        }
        Ok(())
    }

    /// Merges every list named by a `$setElementOrder/<field>` directive,
    /// ordered by that directive, and returns the fields it merged.
    fn apply_element_orders(
        &self,
        path: &[String],
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<Vec<String>, PatchError> {
        let mut merged_fields = Vec::new();
        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(PatchError::InvalidDirectiveValue {
                    path: dotted(path),
                    directive: key.clone(),
                    expected: "a list",
                });
            };
            let patch_list = match patch.get(field) {
                None => None,
                Some(Value::Array(items)) => Some(items.as_slice()),
                // A null or scalar patch value is not a list to order; the
                // main merge handles it.
                Some(_) => continue,
            };
            let current = match original.get(field) {
                Some(Value::Array(items)) => Some(items.clone()),
                _ => None,
            };
            if current.is_none() && patch_list.is_none() {
                continue;
            }
            let merged = self.merge_list(
                path,
                field,
                current.unwrap_or_default(),
                patch_list,
                Some(order),
            )?;
            original.insert(field.to_string(), Value::Array(merged));
            merged_fields.push(field.to_string());
        }
        Ok(merged_fields)
    }
}

/// Applies `$retainKeys`: every key the patch sets must be listed, and keys
/// of `original` that are not listed are cleared.
fn retain_keys(
    path: &[String],
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(listed) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let keys: Vec<&str> = listed
        .as_array()
        .and_then(|items| items.iter().map(Value::as_str).collect())
        .ok_or_else(|| PatchError::InvalidDirectiveValue {
            path: dotted(path),
            directive: RETAIN_KEYS.to_string(),
            expected: "a list of field names",
        })?;
    for (key, value) in patch {
        if key.starts_with('$') || value.is_null() {
            continue;
        }
        if !keys.contains(&key.as_str()) {
            return Err(PatchError::KeyNotRetained {
                path: dotted(path),
                key: key.clone(),
            });
        }
    }
    original.retain(|key, _| keys.contains(&key.as_str()));
    Ok(())
}

/// Applies `$deleteFromPrimitiveList/<field>`: removes every occurrence of
/// the listed values from the list `field` of `original`.
fn delete_from_primitive_list(
    path: &[String],
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
) -> Result<(), PatchError> {
    let Value::Array(values) = values else {
        return Err(PatchError::InvalidDirectiveValue {
            path: dotted(path),
            directive: format!("{DELETE_FROM_PRIMITIVE_LIST}{field}"),
            expected: "a list",
        });
    };
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !values.contains(item));
    }
    Ok(())
}
