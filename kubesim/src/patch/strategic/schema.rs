//! Merge strategies of the list fields of built-in kinds.
//!
//! The table follows the `patchStrategy` and `patchMergeKey` struct tags of
//! the Kubernetes core and apps API types (k8s.io/api, v1.33). A list that
//! carries no tag is atomic: the patch replaces it whole. Examples of atomic
//! lists: `tolerations`, `args`, `command`, `envFrom`, `readinessGates`,
//! `volumeClaimTemplates` and the HPA `metrics`.

/// Merge strategy of a list field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListStrategy {
    /// A list of objects merged element by element; elements match when
    /// their values of this key are equal.
    Keyed(&'static str),
    /// A list of primitive values merged as an ordered set.
    Set,
    /// Replaced whole by the patch.
    Atomic,
}

/// List fields of a pod spec whose elements are containers.
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Returns the strategy of the list `field` of kind `kind`. `parents` contains
/// the object keys from the root down to the object containing `field`.
/// List elements add no entry, so the `env` of a Deployment's container has
/// the parents `spec.template.spec.containers`.
pub(super) fn list_strategy(kind: &str, parents: &[String], field: &str) -> ListStrategy {
    use ListStrategy::{Atomic, Keyed, Set};

    let parent = parents.last().map(String::as_str).unwrap_or("");
    let in_container = CONTAINER_LISTS.contains(&parent);
    match field {
        "containers" | "initContainers" | "ephemeralContainers" => Keyed("name"),
        "volumes" | "resourceClaims" | "schedulingGates" => Keyed("name"),
        // A ServiceAccount's imagePullSecrets carry no merge tag, unlike a
        // pod spec's, but its secrets do.
        "imagePullSecrets" if kind != "ServiceAccount" => Keyed("name"),
        "secrets" if kind == "ServiceAccount" => Keyed("name"),
        "hostAliases" => Keyed("ip"),
        "topologySpreadConstraints" => Keyed("topologyKey"),
        "env" if in_container => Keyed("name"),
        "ports" if in_container => Keyed("containerPort"),
        "volumeMounts" if in_container => Keyed("mountPath"),
        "volumeDevices" if in_container => Keyed("devicePath"),
        "ports" if kind == "Service" && parents == ["spec"] => Keyed("port"),
        "conditions" if parent == "status" => Keyed("type"),
        "podIPs" | "hostIPs" if kind == "Pod" && parent == "status" => Keyed("ip"),
        "addresses" if kind == "Node" && parent == "status" => Keyed("type"),
        "ownerReferences" if parent == "metadata" => Keyed("uid"),
        "finalizers" if parent == "metadata" => Set,
        _ => Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(dotted: &str) -> Vec<String> {
        dotted
            .split('.')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn container_fields_merge_by_their_keys() {
        let container = path("spec.template.spec.containers");
        assert_eq!(
            list_strategy("Deployment", &container, "env"),
            ListStrategy::Keyed("name")
        );
        assert_eq!(
            list_strategy("Deployment", &container, "ports"),
            ListStrategy::Keyed("containerPort")
        );
        assert_eq!(
            list_strategy("StatefulSet", &container, "volumeMounts"),
            ListStrategy::Keyed("mountPath")
        );
        assert_eq!(
            list_strategy("Deployment", &container, "args"),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Deployment", &container, "command"),
            ListStrategy::Atomic
        );
    }

    #[test]
    fn ports_key_depends_on_path() {
        assert_eq!(
            list_strategy("Service", &path("spec"), "ports"),
            ListStrategy::Keyed("port")
        );
        assert_eq!(
            list_strategy("Service", &path("status.loadBalancer.ingress"), "ports"),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Pod", &path("spec.containers"), "ports"),
            ListStrategy::Keyed("containerPort")
        );
    }

    #[test]
    fn untagged_lists_are_atomic() {
        assert_eq!(
            list_strategy("HorizontalPodAutoscaler", &path("spec"), "metrics"),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Pod", &path("spec"), "tolerations"),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Pod", &path("spec"), "readinessGates"),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Namespace", &path("spec"), "finalizers"),
            ListStrategy::Atomic
        );
        assert_eq!(
            list_strategy("Pod", &path("metadata"), "finalizers"),
            ListStrategy::Set
        );
        assert_eq!(
            list_strategy("Deployment", &path("status"), "conditions"),
            ListStrategy::Keyed("type")
        );
    }
}
