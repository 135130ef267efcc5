use super::*;
use serde_json::json;

fn ok(target: Value, ops: Value) -> Value {
    apply(&target, &ops).unwrap_or_else(|e| panic!("patch {ops} failed: {e}"))
}

#[test]
fn rfc6902_add_object_member() {
    let result = ok(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz", "value": "qux"}]),
    );
    assert_eq!(result, json!({"baz": "qux", "foo": "bar"}));
}

#[test]
fn rfc6902_add_array_element() {
    let result = ok(
        json!({"foo": ["bar", "baz"]}),
        json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
    );
    assert_eq!(result, json!({"foo": ["bar", "qux", "baz"]}));
}

#[test]
fn rfc6902_remove_object_member() {
    let result = ok(
        json!({"baz": "qux", "foo": "bar"}),
        json!([{"op": "remove", "path": "/baz"}]),
    );
    assert_eq!(result, json!({"foo": "bar"}));
}

#[test]
fn rfc6902_remove_array_element() {
    let result = ok(
        json!({"foo": ["bar", "qux", "baz"]}),
        json!([{"op": "remove", "path": "/foo/1"}]),
    );
    assert_eq!(result, json!({"foo": ["bar", "baz"]}));
}

#[test]
fn rfc6902_replace_value() {
    let result = ok(
        json!({"baz": "qux", "foo": "bar"}),
        json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
    );
    assert_eq!(result, json!({"baz": "boo", "foo": "bar"}));
}

#[test]
fn rfc6902_move_value() {
    let result = ok(
        json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
        json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
    );
    assert_eq!(
        result,
        json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
    );
}

#[test]
fn rfc6902_move_array_element() {
    let result = ok(
        json!({"foo": ["all", "grass", "cows", "eat"]}),
        json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
    );
    assert_eq!(result, json!({"foo": ["all", "cows", "eat", "grass"]}));
}

#[test]
fn rfc6902_test_success() {
    let target = json!({"baz": "qux", "foo": ["a", 2, "c"]});
    let result = ok(
        target.clone(),
        json!([
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2}
        ]),
    );
    assert_eq!(result, target);
}

#[test]
fn rfc6902_test_failure() {
    let err = apply(
        &json!({"baz": "qux"}),
        &json!([{"op": "test", "path": "/baz", "value": "bar"}]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::TestFailed {
            index: 0,
            path: "/baz".into(),
            expected: json!("bar"),
            actual: json!("qux"),
        }
    );
}

#[test]
fn rfc6902_add_nested_member_object() {
    let result = ok(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
    );
    assert_eq!(result, json!({"foo": "bar", "child": {"grandchild": {}}}));
}

#[test]
fn rfc6902_ignores_unrecognized_members() {
    let result = ok(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
    );
    assert_eq!(result, json!({"foo": "bar", "baz": "qux"}));
}

#[test]
fn rfc6902_add_to_missing_parent_fails() {
    let err = apply(
        &json!({"foo": "bar"}),
        &json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::PathNotFound {
            index: 0,
            op: "add".into(),
            path: "/baz/bat".into()
        }
    );
}

#[test]
fn rfc6902_tilde_escape_order() {
    let target = json!({"/": 9, "~1": 10});
    let result = ok(
        target.clone(),
        json!([{"op": "test", "path": "/~01", "value": 10}]),
    );
    assert_eq!(result, target);
}

#[test]
fn rfc6902_string_never_equals_number() {
    let err = apply(
        &json!({"/": 9, "~1": 10}),
        &json!([{"op": "test", "path": "/~01", "value": "10"}]),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::TestFailed { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn rfc6902_add_array_value_with_dash() {
    let result = ok(
        json!({"foo": ["bar"]}),
        json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
    );
    assert_eq!(result, json!({"foo": ["bar", ["abc", "def"]]}));
}

#[test]
fn slash_escape_reaches_annotation_key() {
    let result = ok(
        json!({"metadata": {"annotations": {"example.com/owner": "a"}}}),
        json!([{"op": "replace", "path": "/metadata/annotations/example.com~1owner", "value": "b"}]),
    );
    assert_eq!(result["metadata"]["annotations"]["example.com/owner"], "b");
}

#[test]
fn failure_names_index_and_keeps_target() {
    let target = json!({"spec": {"replicas": 2}});
    let ops = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "test", "path": "/spec/replicas", "value": 2}
    ]);
    let err = apply(&target, &ops).unwrap_err();
    assert!(
        matches!(err, PatchError::TestFailed { index: 1, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "JSON patch operation 1 (test): value at \"/spec/replicas\" is 5, expected 2"
    );
    assert_eq!(target["spec"]["replicas"], 2);
}

#[test]
fn kubectl_replace_replicas() {
    let result = ok(
        json!({"spec": {"replicas": 3, "template": {}}}),
        json!([{"op": "replace", "path": "/spec/replicas", "value": 6}]),
    );
    assert_eq!(result["spec"]["replicas"], 6);
}

#[test]
fn replace_missing_member_fails() {
    let err = apply(
        &json!({}),
        &json!([{"op": "replace", "path": "/a", "value": 1}]),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::PathNotFound { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn index_beyond_length_is_out_of_range() {
    let err = apply(
        &json!({"a": [1]}),
        &json!([{"op": "add", "path": "/a/2", "value": 0}]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::IndexOutOfRange {
            index: 0,
            op: "add".into(),
            path: "/a/2".into(),
            len: 1
        }
    );
    let err = apply(
        &json!({"a": [1]}),
        &json!([{"op": "remove", "path": "/a/-"}]),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::IndexOutOfRange { len: 1, .. }),
        "{err}"
    );
}

#[test]
fn leading_zero_index_is_invalid() {
    let err = apply(
        &json!({"a": [1, 2]}),
        &json!([{"op": "remove", "path": "/a/01"}]),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::InvalidPointer { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn pointer_without_leading_slash_is_invalid() {
    let err = apply(&json!({}), &json!([{"op": "add", "path": "a", "value": 1}])).unwrap_err();
    assert!(matches!(err, PatchError::InvalidPointer { .. }), "{err}");
    let err = apply(
        &json!({}),
        &json!([{"op": "add", "path": "/a~2", "value": 1}]),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::InvalidPointer { .. }), "{err}");
}

#[test]
fn move_into_own_child_is_rejected() {
    let err = apply(
        &json!({"a": {"b": 1}}),
        &json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
    )
    .unwrap_err();
    assert!(
        matches!(err, PatchError::MoveIntoChild { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn copy_duplicates_value() {
    let result = ok(
        json!({"a": {"x": 1}}),
        json!([{"op": "copy", "from": "/a", "path": "/b"}]),
    );
    assert_eq!(result, json!({"a": {"x": 1}, "b": {"x": 1}}));
}

#[test]
fn add_at_root_replaces_document() {
    let result = ok(
        json!({"a": 1}),
        json!([{"op": "add", "path": "", "value": [1]}]),
    );
    assert_eq!(result, json!([1]));
    let err = apply(&json!({"a": 1}), &json!([{"op": "remove", "path": ""}])).unwrap_err();
    assert_eq!(err, PatchError::RemoveRoot { index: 0 });
}

#[test]
fn numbers_compare_by_value_in_test() {
    let target = json!({"cpu": 1});
    ok(
        target,
        json!([{"op": "test", "path": "/cpu", "value": 1.0}]),
    );
}

#[test]
fn malformed_operations_are_named() {
    let err = apply(&json!({}), &json!({"op": "add"})).unwrap_err();
    assert_eq!(err, PatchError::OperationsNotArray { found: "object" });
    let err = apply(&json!({}), &json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
    assert_eq!(
        err,
        PatchError::UnknownOperation {
            index: 0,
            op: "frobnicate".into()
        }
    );
    let err = apply(&json!({}), &json!([{"op": "add", "path": "/a"}])).unwrap_err();
    assert_eq!(
        err,
        PatchError::MissingMember {
            index: 0,
            op: "add".into(),
            member: "value"
        }
    );
    let err = apply(&json!({}), &json!([{"op": "copy", "path": "/a"}])).unwrap_err();
    assert!(
        matches!(err, PatchError::MissingMember { member: "from", .. }),
        "{err}"
    );
    let err = apply(&json!({}), &json!(["add"])).unwrap_err();
    assert_eq!(
        err,
        PatchError::OperationNotObject {
            index: 0,
            found: "string"
        }
    );
}
