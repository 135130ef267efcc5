//! Validation of written objects: the checks whose 422 Invalid responses
//! clients meet in practice (replica counts, selectors, containers,
//! resource quantities, HPA bounds, immutable fields).

use serde_json::Value;

use super::error::{ApiError, FieldCause};
use crate::registry::ResourceType;

/// Maximum object name length: a DNS subdomain (RFC 1123).
const MAX_NAME_LENGTH: usize = 253;

/// Validates an object about to be stored. `old` is the stored version on
/// update, `None` on create.
pub fn check(resource: &ResourceType, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if old.is_none() {
        check_name(object, &mut causes);
    }
    match (resource.group, resource.kind) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") => {
            check_replicas(&object["spec"]["replicas"], "spec.replicas", &mut causes);
            check_workload(object, &mut causes);
            if let Some(old) = old {
                check_immutable(resource, old, object, &mut causes);
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => check_hpa(&object["spec"], &mut causes),
        ("policy", "PodDisruptionBudget") => {
            let spec = &object["spec"];
            if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
                causes.push(FieldCause::invalid(
                    "spec",
                    spec,
                    "minAvailable and maxUnavailable cannot be both set",
                ));
            }
        }
        ("", "Pod") => check_pod_spec(&object["spec"], "spec", &mut causes),
        ("acid.zalan.do", "postgresql") => {
            let instances = &object["spec"]["numberOfInstances"];
            if !instances.is_null() {
                check_replicas(instances, "spec.numberOfInstances", &mut causes);
            }
        }
        _ => {}
    }
    reject(resource, object, causes)
}

/// Validates a Scale object written through a `scale` subresource.
pub fn check_scale(resource: &ResourceType, scale: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    check_replicas(&scale["spec"]["replicas"], "spec.replicas", &mut causes);
    if causes.is_empty() {
        return Ok(());
    }
    let name = scale["metadata"]["name"].as_str().unwrap_or_default();
    let mut error = ApiError::invalid(resource, name, causes);
    if let ApiError::Invalid {
        message, subject, ..
    } = &mut error
    {
        // Scale errors name the Scale kind of the autoscaling group.
        *message = message.replacen(
            &super::error::qualified_kind(resource),
            "Scale.autoscaling",
            1,
        );
        subject.kind = "Scale".into();
        subject.group = "autoscaling".into();
    }
    Err(error)
}

fn reject(
    resource: &ResourceType,
    object: &Value,
    causes: Vec<FieldCause>,
) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(resource, name, causes))
}

fn check_name(object: &Value, causes: &mut Vec<FieldCause>) {
    let name = &object["metadata"]["name"];
    let Some(text) = name.as_str() else {
        return;
    };
    let valid = !text.is_empty()
        && text.len() <= MAX_NAME_LENGTH
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        causes.push(FieldCause::invalid(
            "metadata.name",
            name,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
        ));
    }
}

/// Replica counts are absent (defaulted), or integers from 0 to 2^31-1.
fn check_replicas(value: &Value, field: &str, causes: &mut Vec<FieldCause>) {
    match value {
        Value::Null => {}
        Value::Number(n) => match n.as_i64() {
            Some(v) if v < 0 => causes.push(FieldCause::invalid(
                field,
                value,
                "must be greater than or equal to 0",
            )),
            Some(v) if v > i64::from(i32::MAX) => causes.push(FieldCause::invalid(
                field,
                value,
                "must be less than or equal to 2147483647",
            )),
            Some(_) => {}
            None => causes.push(FieldCause::invalid(field, value, "must be an integer")),
        },
        _ => causes.push(FieldCause::invalid(field, value, "must be an integer")),
    }
}

fn check_workload(object: &Value, causes: &mut Vec<FieldCause>) {
    let spec = &object["spec"];
    let selector = &spec["selector"];
    let template_labels = &spec["template"]["metadata"]["labels"];
    if selector.is_null() {
        causes.push(FieldCause::required("spec.selector", ""));
    } else {
        let empty = selector["matchLabels"]
            .as_object()
            .is_none_or(|m| m.is_empty())
            && selector["matchExpressions"]
                .as_array()
                .is_none_or(|e| e.is_empty());
        if empty {
            causes.push(FieldCause::invalid(
                "spec.selector",
                selector,
                "empty selector is invalid for deployment",
            ));
        } else if !selector_matches(selector, template_labels) {
            causes.push(FieldCause::invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            ));
        }
    }
    check_pod_spec(&spec["template"]["spec"], "spec.template.spec", causes);
}

fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let labels_ok = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let expressions_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => label(key).is_some_and(|l| values.contains(&l)),
                "NotIn" => label(key).is_none_or(|l| !values.contains(&l)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        });
    labels_ok && expressions_ok
}

fn check_pod_spec(spec: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        causes.push(FieldCause::required(format!("{path}.containers"), ""));
        return;
    }
    for (index, container) in containers.iter().enumerate() {
        let at = format!("{path}.containers[{index}]");
        if container["name"].as_str().is_none_or(str::is_empty) {
            causes.push(FieldCause::required(format!("{at}.name"), ""));
        }
        if container["image"].as_str().is_none_or(str::is_empty) {
            causes.push(FieldCause::required(format!("{at}.image"), ""));
        }
        check_resources(&container["resources"], &format!("{at}.resources"), causes);
    }
}

fn check_resources(resources: &Value, path: &str, causes: &mut Vec<FieldCause>) {
    for section in ["requests", "limits"] {
        for (name, value) in resources[section].as_object().into_iter().flatten() {
            let field = format!("{path}.{section}.{name}");
            match value.as_str().map(parse_quantity).or_else(|| value.as_f64().map(Some)) {
                Some(Some(_)) => {}
                _ => causes.push(FieldCause::invalid(
                    field,
                    value,
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )),
            }
        }
    }
    for (name, request) in resources["requests"].as_object().into_iter().flatten() {
        let limit = &resources["limits"][name];
        let (Some(request_value), Some(limit_value)) = (quantity_of(request), quantity_of(limit))
        else {
            continue;
        };
        if request_value > limit_value {
            causes.push(FieldCause::invalid(
                format!("{path}.requests"),
                request,
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    text_of(limit)
                ),
            ));
        }
    }
}

fn quantity_of(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Parses a Kubernetes resource quantity (`500m`, `1.5`, `512Mi`, `2G`,
/// `1e3`) to its value in base units.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let power: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(power)
        }
    };
    Some(number * factor)
}

fn check_hpa(spec: &Value, causes: &mut Vec<FieldCause>) {
    let min = &spec["minReplicas"];
    let max = &spec["maxReplicas"];
    if let Some(value) = min.as_i64()
        && value < 1
    {
        causes.push(FieldCause::invalid(
            "spec.minReplicas",
            min,
            "must be greater than or equal to 1",
        ));
    } else if !min.is_null() && min.as_i64().is_none() {
        causes.push(FieldCause::invalid(
            "spec.minReplicas",
            min,
            "must be an integer",
        ));
    }
    match max.as_i64() {
        None => causes.push(FieldCause::required("spec.maxReplicas", "")),
        Some(value) if value < 1 => causes.push(FieldCause::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to 1",
        )),
        Some(value) if value < min.as_i64().unwrap_or(1) => causes.push(FieldCause::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        )),
        Some(_) => {}
    }
    let target = &spec["scaleTargetRef"];
    if target["kind"].as_str().is_none_or(str::is_empty) {
        causes.push(FieldCause::required("spec.scaleTargetRef.kind", ""));
    }
    if target["name"].as_str().is_none_or(str::is_empty) {
        causes.push(FieldCause::required("spec.scaleTargetRef.name", ""));
    }
}

/// Fields a real server refuses to change after creation.
fn check_immutable(
    resource: &ResourceType,
    old: &Value,
    new: &Value,
    causes: &mut Vec<FieldCause>,
) {
    if old["spec"]["selector"] != new["spec"]["selector"] {
        causes.push(FieldCause::invalid(
            "spec.selector",
            &new["spec"]["selector"],
            "field is immutable",
        ));
    }
    if resource.kind == "StatefulSet" {
        // Only these StatefulSet spec fields may change (Kubernetes 1.32).
        const MUTABLE: [&str; 7] = [
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            "selector",
        ];
        let strip = |spec: &Value| {
            let mut spec = spec.clone();
            if let Some(map) = spec.as_object_mut() {
                map.retain(|k, _| !MUTABLE.contains(&k.as_str()));
            }
            spec
        };
        if strip(&old["spec"]) != strip(&new["spec"]) {
            causes.push(FieldCause::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "synapse"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "synapse"}},
                "template": {"metadata": {"labels": {"app": "synapse"}},
                             "spec": {"containers": [{"name": "synapse", "image": "synapse:1",
                                      "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}]}},
            },
        })
    }

    fn fields(result: Result<(), ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::Invalid { causes, .. }) => causes.into_iter().map(|c| c.field).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_valid_deployment() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        assert!(check(deployments, &deployment(), None).is_ok());
    }

    #[test]
    fn rejects_negative_and_fractional_replicas() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        for bad in [json!(-1), json!(2.5), json!("3")] {
            let mut object = deployment();
            object["spec"]["replicas"] = bad.clone();
            assert_eq!(
                fields(check(deployments, &object, None)),
                vec!["spec.replicas"],
                "replicas {bad}"
            );
        }
    }

    #[test]
    fn rejects_selector_not_matching_template() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let mut object = deployment();
        object["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        assert_eq!(
            fields(check(deployments, &object, None)),
            vec!["spec.template.metadata.labels"]
        );
    }

    #[test]
    fn rejects_request_above_limit_and_bad_quantity() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let mut object = deployment();
        object["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "2", "memory": "lots"}, "limits": {"cpu": "1"}});
        let found = fields(check(deployments, &object, None));
        assert!(
            found.contains(
                &"spec.template.spec.containers[0].resources.requests.memory".to_string()
            )
        );
        assert!(found.contains(&"spec.template.spec.containers[0].resources.requests".to_string()));
    }

    #[test]
    fn rejects_selector_change_on_update() {
        let deployments = registry::find("apps", "v1", "deployments").unwrap();
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "synapse", "tier": "x"}});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
        assert_eq!(
            fields(check(deployments, &new, Some(&old))),
            vec!["spec.selector"]
        );
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2Gi"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("abc"), None);
    }
}
