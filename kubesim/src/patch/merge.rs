//! JSON Merge Patch (RFC 7386): objects merge member by member, a `null`
//! member deletes, and any other value (arrays included) replaces.

use serde_json::{Map, Value};

/// Applies `patch` to `target` and returns the result. There is no error
/// case because every JSON value is a valid merge patch. A patch that is not an object replaces
/// the whole target.
pub fn apply(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut result = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            result.remove(key);
            continue;
        }
        let current = result.get(key).unwrap_or(&Value::Null);
        let merged = apply(current, value);
        result.insert(key.clone(), merged);
    }
    Value::Object(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example table of RFC 7386, Appendix A: (target, patch, result).
    #[test]
    fn rfc7386_appendix_a() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(
                apply(&target, &patch),
                expected,
                "target {target}, patch {patch}"
            );
        }
    }

    #[test]
    fn merge_patch_leaves_target_unchanged() {
        let target = json!({"spec": {"numberOfInstances": 2, "volume": {"size": "10Gi"}}});
        let patch = json!({"spec": {"numberOfInstances": 3}});
        let result = apply(&target, &patch);
        assert_eq!(result["spec"]["numberOfInstances"], 3);
        assert_eq!(result["spec"]["volume"]["size"], "10Gi");
        assert_eq!(target["spec"]["numberOfInstances"], 2);
    }

    #[test]
    fn merge_patch_replaces_lists_whole() {
        let target = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "c"}]}});
        let result = apply(&target, &patch);
        assert_eq!(result["spec"]["containers"], json!([{"name": "c"}]));
    }
}
