//! Read-only views of pods, taken from the store, with the fields the
//! programs need: readiness and since when, IP, ordinal and container env.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cluster::Cluster;

/// Store key of pods.
pub(crate) const PODS: &str = "/v1/pods";

/// Software a pod runs, decided by its `app` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Software {
    Cassandra,
    Kafka,
    Redis,
    /// Every other workload: a Spring Boot service serving HTTP on 8080.
    SpringBoot,
}

#[derive(Debug, Clone)]
pub(crate) struct PodView {
    pub name: String,
    pub uid: String,
    /// The `app` label; empty when missing.
    pub app: String,
    pub phase: String,
    pub ip: Option<String>,
    pub ready: bool,
    /// `lastTransitionTime` of the Ready condition: when the pod became
    /// Ready if `ready`, else when it stopped being Ready.
    pub ready_since: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub object: Value,
}

pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl PodView {
    pub fn from_object(object: Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let ready_condition = object["status"]["conditions"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or(Value::Null);
        let ip = object["status"]["podIP"]
            .as_str()
            .filter(|ip| !ip.is_empty());
        Self {
            name: text(&object["metadata"]["name"]),
            uid: text(&object["metadata"]["uid"]),
            app: text(&object["metadata"]["labels"]["app"]),
            phase: text(&object["status"]["phase"]),
            ip: ip.map(str::to_string),
            ready: ready_condition["status"] == "True",
            ready_since: ready_condition["lastTransitionTime"]
                .as_str()
                .and_then(parse_time),
            start_time: object["status"]["startTime"].as_str().and_then(parse_time),
            object,
        }
    }

    pub fn software(&self) -> Software {
        let app = if self.app.is_empty() {
            self.workload()
        } else {
            &self.app
        };
        if app.starts_with("cassandra") {
            Software::Cassandra
        } else if app.starts_with("kafka") {
            Software::Kafka
        } else if app.starts_with("redis") {
            Software::Redis
        } else {
            Software::SpringBoot
        }
    }

    /// Returns the StatefulSet ordinal: the number after the last `-`.
    pub fn ordinal(&self) -> Option<u32> {
        self.name.rsplit_once('-')?.1.parse().ok()
    }

    /// Returns the StatefulSet name for `<sts>-<ordinal>` pods, else the pod
    /// name.
    pub fn workload(&self) -> &str {
        match self.name.rsplit_once('-') {
            Some((prefix, ordinal)) if ordinal.parse::<u32>().is_ok() => prefix,
            _ => &self.name,
        }
    }

    pub fn is_running(&self) -> bool {
        self.phase == "Running"
    }

    /// Returns the container `name`, or the first container when `name` is
    /// empty.
    pub fn container(&self, name: &str) -> Option<&Value> {
        let containers = self.object["spec"]["containers"].as_array()?;
        if name.is_empty() {
            return containers.first();
        }
        containers.iter().find(|c| c["name"] == name)
    }

    /// Returns the value of env var `var` in container `container` (first container
    /// when empty). `valueFrom` references are not resolved.
    pub fn env(&self, container: &str, var: &str) -> Option<String> {
        self.container(container)?["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == var)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    }

    /// Returns the pod's DNS name under the headless service named like its
    /// StatefulSet, such as `kafka-0.kafka.butterfly.svc.cluster.local`.
    pub fn stable_host(&self, namespace: &str) -> String {
        format!(
            "{}.{}.{namespace}.svc.cluster.local",
            self.name,
            self.workload()
        )
    }
}

pub(crate) fn get(cluster: &Cluster, namespace: &str, name: &str) -> Option<PodView> {
    cluster
        .store
        .get(PODS, namespace, name)
        .map(PodView::from_object)
}

/// Pods of `namespace` running `software`, ordered by ordinal, then name.
/// Pods being deleted are left out.
pub(crate) fn of_software(cluster: &Cluster, namespace: &str, software: Software) -> Vec<PodView> {
    let (objects, _) = cluster.store.list(PODS, Some(namespace));
    let mut pods: Vec<PodView> = objects
        .into_iter()
        .map(PodView::from_object)
        .filter(|p| p.software() == software && p.object["metadata"]["deletionTimestamp"].is_null())
        .collect();
    pods.sort_by(|a, b| (a.ordinal(), &a.name).cmp(&(b.ordinal(), &b.name)));
    pods
}

/// Pods of `namespace` whose `app` label is `app`, ordered by name.
pub(crate) fn with_app(cluster: &Cluster, namespace: &str, app: &str) -> Vec<PodView> {
    let (objects, _) = cluster.store.list(PODS, Some(namespace));
    let mut pods: Vec<PodView> = objects
        .into_iter()
        .map(PodView::from_object)
        .filter(|p| p.app == app)
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods
}

/// Finds the pod a host name or address refers to: `localhost`, a pod IP,
/// or a DNS name whose first label is a pod name (`redis-3.redis...`).
pub(crate) fn resolve_host(
    cluster: &Cluster,
    namespace: &str,
    current: &PodView,
    host: &str,
) -> Option<PodView> {
    if host == "localhost" || host == "127.0.0.1" {
        return Some(current.clone());
    }
    let (objects, _) = cluster.store.list(PODS, Some(namespace));
    let pods = objects.into_iter().map(PodView::from_object);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return pods.into_iter().find(|p| p.ip.as_deref() == Some(host));
    }
    let first_label = host.split('.').next().unwrap_or(host);
    pods.into_iter().find(|p| p.name == first_label)
}
