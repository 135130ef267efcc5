//! The `large:N` scenario: N identical small services `svc-001`... in
//! namespace `butterfly`, each a Deployment of 2 replicas with an HPA
//! (2 to 6), a PodDisruptionBudget and a Service, on as many nodes as the
//! pods need with a quarter to spare.

use serde_json::Value;

use super::builders::{self, AppService, Budget, NodeShape};

const NAMESPACE: &str = "butterfly";
const REPLICAS: i64 = 2;
const ZONES: &[&str] = &["europe-west1-b", "europe-west1-c", "europe-west1-d"];
const REGION: &str = "europe-west1";
const MIN_NODES: usize = 3;

/// Same machine type as the `butterfly` scenario. The 110-pod limit, not
/// CPU or memory, is what fills first with these small pods.
const NODE_SHAPE: NodeShape = NodeShape {
    instance_type: "n2-standard-16",
    cpu: "16",
    memory: "65851340Ki",
    allocatable_cpu: "15890m",
    allocatable_memory: "61255628Ki",
    max_pods: 110,
};

/// Nodes for `services` services: room for their pods plus 25 %.
fn node_count(services: usize) -> usize {
    let pods = services * REPLICAS as usize;
    let max_pods = NODE_SHAPE.max_pods as usize;
    (pods * 5 / 4).div_ceil(max_pods).max(MIN_NODES)
}

pub(super) fn objects(services: usize) -> Vec<Value> {
    let mut objects: Vec<Value> = ["butterfly", "default", "kube-system"]
        .into_iter()
        .map(builders::namespace)
        .collect();
    let nodes = node_count(services);
    let node_width = nodes.to_string().len().max(3);
    for i in 0..nodes {
        let name = format!("node-{:0node_width$}", i + 1);
        objects.push(builders::node(
            &name,
            i,
            ZONES[i % ZONES.len()],
            REGION,
            &NODE_SHAPE,
        ));
    }
    let width = services.to_string().len().max(3);
    for i in 1..=services {
        let service = AppService {
            name: format!("svc-{i:0width$}"),
            namespace: NAMESPACE,
            image: "registry.butterfly.internal/svc:1.0.0".to_string(),
            min_replicas: REPLICAS,
            replicas: REPLICAS,
            max_replicas: 6,
            cpu_request: "100m",
            memory_request: "128Mi",
            cpu_limit: "500m",
            memory_limit: "512Mi",
            env: vec![("JAVA_OPTS", "-Xms64m -Xmx384m -XX:+UseSerialGC".to_string())],
            budget: Budget::MaxUnavailable(1),
            cpu_demand: "80m".to_string(),
            memory_utilization: 50,
            client_ip_affinity: false,
        };
        objects.extend([
            service.deployment(),
            service.autoscaler(),
            service.disruption_budget(),
            service.service(),
        ]);
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_count_leaves_a_quarter_spare() {
        assert_eq!(node_count(1), MIN_NODES);
        assert_eq!(node_count(200), 5);
        assert_eq!(node_count(2000), 46);
    }
}
