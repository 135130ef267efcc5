//! Merging and ordering of lists.
//!
//! The order of a merged list follows the API server (apimachinery
//! `strategicpatch`). The elements named by the patch, or by
//! `$setElementOrder`, keep that order. The other elements keep their live
//! order, and one goes before a named element only when the live list had it
//! before that element. So an element new to the list lands before the live
//! elements the patch does not name: adding one container to `[a, b]` gives
//! `[new, a, b]`.

use serde_json::{Map, Value};

use super::schema::{ListStrategy, list_strategy};
use super::{Directive, Merger, PATCH, child_path, directive, dotted};
use crate::patch::PatchError;

/// Match rule for list elements: a merge key, or the whole value for lists
/// of primitives.
#[derive(Clone, Copy)]
enum Identity<'k> {
    MergeKey(&'k str),
    Whole,
}

impl Identity<'_> {
    fn of(self, item: &Value) -> Option<&Value> {
        match self {
            Identity::MergeKey(key) => item.get(key),
            Identity::Whole => Some(item),
        }
    }

    fn position(self, list: &[Value], item: &Value) -> Option<usize> {
        let id = self.of(item)?;
        list.iter().position(|other| self.of(other) == Some(id))
    }
}

impl Merger<'_> {
    /// Merges the list `field` of the object at `path`. `patch` is `None`
    /// when only a `$setElementOrder` names the field; `order` is that
    /// directive's list.
    pub(super) fn merge_list(
        &self,
        path: &[String],
        field: &str,
        original: Vec<Value>,
        patch: Option<&[Value]>,
        order: Option<&[Value]>,
    ) -> Result<Vec<Value>, PatchError> {
        let list_path = child_path(path, field);
        match list_strategy(self.kind, path, field) {
            ListStrategy::Atomic => match patch {
                Some(patch) => self.literal_list(&list_path, patch),
                None => Ok(original),
            },
            ListStrategy::Set => merge_set(&list_path, original, patch.unwrap_or_default(), order),
            ListStrategy::Keyed(key) => {
                self.merge_keyed(&list_path, key, original, patch.unwrap_or_default(), order)
            }
        }
    }

    /// Builds the new value of an atomic list from the patch list, stripping
    /// directives from its objects.
    fn literal_list(
        &self,
        list_path: &[String],
        patch: &[Value],
    ) -> Result<Vec<Value>, PatchError> {
        let mut items = Vec::with_capacity(patch.len());
        for item in patch {
            match item {
                Value::Object(map) => {
                    if let Some(clean) = self.merge_map(list_path, Map::new(), map)? {
                        items.push(Value::Object(clean));
                    }
                }
                other => items.push(other.clone()),
            }
        }
        Ok(items)
    }

    /// Merges a list of objects on `key`.
    fn merge_keyed(
        &self,
        list_path: &[String],
        key: &'static str,
        original: Vec<Value>,
        patch: &[Value],
        order: Option<&[Value]>,
    ) -> Result<Vec<Value>, PatchError> {
        let objects_only = |list: &[Value]| list.iter().all(Value::is_object);
        if !objects_only(&original) || !objects_only(patch) {
            return Err(PatchError::ListElementType {
                path: dotted(list_path),
                expected: "objects",
            });
        }
        let SplitPatch {
            live: mut merged,
            updates,
        } = split_special_elements(list_path, key, &original, patch)?;
        for update in &updates {
            let id = update.get(key).ok_or_else(|| PatchError::MissingMergeKey {
                path: dotted(list_path),
                key,
            })?;
            let existing = merged.iter().position(|item| item.get(key) == Some(id));
            let base = match existing {
                Some(i) => merged[i].as_object().cloned().unwrap_or_default(),
                None => Map::new(),
            };
            let Some(result) = self.merge_map(list_path, base, update)? else {
                continue;
            };
            match existing {
                Some(i) => merged[i] = Value::Object(result),
                None => merged.push(Value::Object(result)),
            }
        }
        let updates: Vec<Value> = updates.into_iter().map(Value::Object).collect();
        let identity = Identity::MergeKey(key);
        if let Some(order) = order {
            check_element_order(list_path, identity, &updates, order)?;
        }
        Ok(normalize_order(
            merged,
            order.unwrap_or(&updates),
            &original,
            identity,
        ))
    }
}

/// A keyed list patch after its `$patch` elements were applied.
struct SplitPatch {
    /// The live list after deletions, or empty after `$patch: replace`.
    live: Vec<Value>,
    /// The elements to merge into `live`, without their `$patch` member.
    updates: Vec<Map<String, Value>>,
}

/// Applies the `$patch` elements of a keyed list patch.
fn split_special_elements(
    list_path: &[String],
    key: &'static str,
    original: &[Value],
    patch: &[Value],
) -> Result<SplitPatch, PatchError> {
    let mut live = original.to_vec();
    let mut updates = Vec::new();
    let mut replace = false;
    for element in patch {
        let Value::Object(element) = element else {
            continue;
        };
        match directive(list_path, element)? {
            Directive::Merge => {
                let mut update = element.clone();
                update.remove(PATCH);
                updates.push(update);
            }
            Directive::Replace => replace = true,
            Directive::Delete => {
                let id = element
                    .get(key)
                    .ok_or_else(|| PatchError::MissingMergeKey {
                        path: dotted(list_path),
                        key,
                    })?;
                live.retain(|item| item.get(key) != Some(id));
            }
        }
    }
    if replace {
        live.clear();
    }
    Ok(SplitPatch { live, updates })
}

/// Merges a list of primitives as an ordered set: live values first, then
/// new ones, without duplicates, then ordered like the patch.
fn merge_set(
    list_path: &[String],
    original: Vec<Value>,
    patch: &[Value],
    order: Option<&[Value]>,
) -> Result<Vec<Value>, PatchError> {
    let primitive = |value: &Value| !value.is_object() && !value.is_array();
    if !original.iter().chain(patch).all(primitive) {
        return Err(PatchError::ListElementType {
            path: dotted(list_path),
            expected: "primitive values",
        });
    }
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.iter().chain(patch) {
        if !merged.contains(value) {
            merged.push(value.clone());
        }
    }
    if let Some(order) = order {
        check_element_order(list_path, Identity::Whole, patch, order)?;
    }
    Ok(normalize_order(
        merged,
        order.unwrap_or(patch),
        &original,
        Identity::Whole,
    ))
}

/// Checks that every element of `patch` appears in `order`, in the same
/// relative order, as the API server requires of `$setElementOrder`.
fn check_element_order(
    list_path: &[String],
    identity: Identity,
    patch: &[Value],
    order: &[Value],
) -> Result<(), PatchError> {
    let mut remaining = order.iter().map(|item| identity.of(item));
    for element in patch {
        let id = identity.of(element);
        if !remaining.any(|ordered| ordered == id) {
            let (parent, field) = list_path.split_at(list_path.len().saturating_sub(1));
            return Err(PatchError::ElementOrderMismatch {
                path: dotted(parent),
                field: field.join(""),
            });
        }
    }
    Ok(())
}

/// Orders `merged`. Elements named in `patch_order` follow that order. The
/// others follow `live`, and each goes before a named element only when
/// `live` had it before that element.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    live: &[Value],
    identity: Identity,
) -> Vec<Value> {
    let (mut named, mut unnamed): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| identity.position(patch_order, item).is_some());
    named.sort_by_key(|item| identity.position(patch_order, item));
    unnamed.sort_by_key(|item| identity.position(live, item).unwrap_or(usize::MAX));

    let mut result = Vec::with_capacity(named.len() + unnamed.len());
    let mut named = named.into_iter().peekable();
    let mut unnamed = unnamed.into_iter().peekable();
    while let (Some(server_item), Some(patch_item)) = (unnamed.peek(), named.peek()) {
        let live_before = matches!(
            (identity.position(live, server_item), identity.position(live, patch_item)),
            (Some(a), Some(b)) if a < b
        );
        let next = if live_before {
            unnamed.next()
        } else {
            named.next()
        };
        result.extend(next);
    }
    result.extend(named);
    result.extend(unnamed);
    result
}
