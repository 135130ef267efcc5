//! The scaling runbook's commands, run with the real `kubectl` against
//! `kubesim serve --scenario butterfly`.
//!
//! Each test checks the state a command leaves behind, read back with
//! `-o jsonpath` or `-o json`, besides kubectl's exit status and output.
//! `exec` runs without the runbook's `-it` because the tests have no
//! terminal. Every test starts its own kubesim, so the tests run in
//! parallel and never see each other's changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use integration_tests::KubesimProcess;
use serde_json::Value;

/// Upper bound for the simulated cluster to reach a state. With kubesim's
/// fast timing a scale settles in about a second.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Calls `probe` until it returns `Ok`, for at most [`SETTLE_TIMEOUT`].
/// `probe` returns what it observed as the `Err` text, which the panic
/// message shows when time runs out.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(observed) if Instant::now() >= deadline => panic!(
                "timed out after {SETTLE_TIMEOUT:?} waiting for {what}; last observed:\n{observed}"
            ),
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// Runs `kubectl LINE`, with LINE split at whitespace, and returns stdout.
/// Panics with stderr when kubectl fails.
fn kubectl(kubesim: &KubesimProcess, line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    kubesim.kubectl_ok(&args)
}

/// Runs kubectl, expecting it to fail, and returns its stderr.
fn kubectl_err(kubesim: &KubesimProcess, args: &[&str]) -> String {
    let output = kubesim.kubectl(args);
    assert!(
        !output.status.success(),
        "kubectl {} succeeded but was expected to fail; stdout:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Reads one field of `object` (such as `deployment/synapse`) with
/// `-o jsonpath`.
fn jsonpath(kubesim: &KubesimProcess, object: &str, path: &str) -> String {
    let template = format!("jsonpath={path}");
    kubesim.kubectl_ok(&["get", object, "-n", "butterfly", "-o", &template])
}

/// Runs `kubectl get ARGS -n butterfly -o json` and parses the output.
fn get_json(kubesim: &KubesimProcess, args: &str) -> Value {
    let text = kubectl(kubesim, &format!("get {args} -n butterfly -o json"));
    serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!("kubectl get {args} -o json printed invalid JSON ({error}):\n{text}")
    })
}

/// Runs `kubectl exec POD -n butterfly -- COMMAND`, with COMMAND split at
/// whitespace, and returns its stdout. Panics with stderr when the command
/// exits non-zero.
fn exec(kubesim: &KubesimProcess, pod: &str, command: &str) -> String {
    kubectl(kubesim, &format!("exec {pod} -n butterfly -- {command}"))
}

/// Runs the runbook's `kubectl rollout status WORKLOAD` and checks that it
/// reported a finished rollout.
fn rollout_status(kubesim: &KubesimProcess, workload: &str) {
    let output = kubectl(
        kubesim,
        &format!("rollout status {workload} -n butterfly --timeout=60s"),
    );
    // Deployments print "successfully rolled out"; StatefulSets, whose
    // rolling update has a partition (0 by default), print "partitioned
    // roll out complete".
    assert!(
        output.contains("successfully rolled out") || output.contains("roll out complete"),
        "rollout status of {workload} did not report completion:\n{output}"
    );
}

fn scale(kubesim: &KubesimProcess, workload: &str, replicas: u32) {
    let output = kubectl(
        kubesim,
        &format!("scale {workload} --replicas={replicas} -n butterfly"),
    );
    assert!(
        output.trim().ends_with(" scaled"),
        "kubectl scale {workload} --replicas={replicas} printed: {output}"
    );
}

/// Items of a `get ... -o json` list.
fn items(list: &Value) -> &Vec<Value> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// True when the pod is Running and its Ready condition is True.
fn is_running_and_ready(pod: &Value) -> bool {
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    pod["status"]["phase"] == "Running" && ready
}

/// Waits until exactly `count` pods match `selector`, all Running and
/// Ready, and returns their names.
fn wait_for_ready_pods(kubesim: &KubesimProcess, selector: &str, count: usize) -> Vec<String> {
    wait_for(&format!("{count} ready pods with {selector}"), || {
        let list = get_json(kubesim, &format!("pods -l {selector}"));
        let pods = items(&list);
        let ready: Vec<String> = pods
            .iter()
            .filter(|p| is_running_and_ready(p))
            .map(name_of)
            .collect();
        if ready.len() == count && pods.len() == count {
            return Ok(ready);
        }
        let phases: Vec<String> = pods
            .iter()
            .map(|p| format!("{} {}", name_of(p), p["status"]["phase"]))
            .collect();
        Err(format!("{} ready of:\n{}", ready.len(), phases.join("\n")))
    })
}

/// Pod IPs of the pods matching `selector`.
fn pod_ips(kubesim: &KubesimProcess, selector: &str) -> BTreeSet<String> {
    let list = get_json(kubesim, &format!("pods -l {selector}"));
    items(&list)
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str())
        .map(str::to_string)
        .collect()
}

/// A table as kubectl prints it. Cells are cut at the offsets where the
/// header's column names start, because names such as `ALLOWED DISRUPTIONS`
/// contain a space while kubectl separates columns by at least three.
struct Table {
    /// Column names and the byte offsets where they start.
    columns: Vec<(String, usize)>,
    rows: Vec<String>,
    text: String,
}

impl Table {
    /// Parses `text`; blank lines before the header are skipped, because
    /// `kafka-consumer-groups.sh` prints one.
    fn parse(text: &str) -> Self {
        let mut lines = text.lines().skip_while(|line| line.trim().is_empty());
        let header = lines.next().unwrap_or("");
        let bytes = header.as_bytes();
        let columns = (0..bytes.len())
            .filter(|&i| bytes[i] != b' ' && (i == 0 || (i >= 2 && &bytes[i - 2..i] == b"  ")))
            .map(|start| {
                let rest = &header[start..];
                let end = rest.find("  ").unwrap_or(rest.len());
                (rest[..end].to_string(), start)
            })
            .collect();
        Self {
            columns,
            rows: lines
                .filter(|line| !line.trim().is_empty())
                .map(str::to_string)
                .collect(),
            text: text.to_string(),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn cell<'a>(&self, row: &'a str, column: &str) -> &'a str {
        let index = self
            .columns
            .iter()
            .position(|(name, _)| name == column)
            .unwrap_or_else(|| panic!("no column {column} in:\n{}", self.text));
        let start = self.columns[index].1.min(row.len());
        let end = self
            .columns
            .get(index + 1)
            .map_or(row.len(), |(_, next)| (*next).min(row.len()));
        row.get(start..end).unwrap_or("").trim()
    }

    /// Returns the row whose first cell is `name`.
    fn row(&self, name: &str) -> &str {
        self.rows
            .iter()
            .find(|row| row.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in:\n{}", self.text))
    }

    /// Returns the cells of `column` in all rows.
    fn column(&self, column: &str) -> Vec<&str> {
        self.rows.iter().map(|row| self.cell(row, column)).collect()
    }

    /// Returns the first column as a set, such as the names of the listed
    /// objects.
    fn first_cells(&self) -> BTreeSet<String> {
        self.rows
            .iter()
            .filter_map(|row| row.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }
}

/// Value of a `Key:   value` line of `kubectl describe` output.
fn describe_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} line in:\n{text}"))
}

/// Lines containing `first` and, after it, `then`, ignoring case: what
/// `grep -i "first.*then"` prints.
fn grep<'a>(text: &'a str, first: &str, then: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            let lower = line.to_lowercase();
            lower
                .find(first)
                .is_some_and(|at| lower[at + first.len()..].contains(then))
        })
        .collect()
}

#[test]
fn synapse_scale_out_reaches_four_ready_pods() {
    let kubesim = KubesimProcess::start("butterfly");

    let before = Table::parse(&kubectl(&kubesim, "get deployment/synapse -n butterfly"));
    assert_eq!(
        before.names(),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{}",
        before.text
    );
    let row = before.row("synapse");
    assert_eq!(before.cell(row, "READY"), "3/3", "{}", before.text);
    assert_eq!(before.cell(row, "UP-TO-DATE"), "3", "{}", before.text);
    assert_eq!(before.cell(row, "AVAILABLE"), "3", "{}", before.text);

    scale(&kubesim, "deployment/synapse", 4);
    assert_eq!(
        jsonpath(&kubesim, "deployment/synapse", "{.spec.replicas}"),
        "4"
    );
    rollout_status(&kubesim, "deployment/synapse");
    assert_eq!(
        jsonpath(&kubesim, "deployment/synapse", "{.status.readyReplicas}"),
        "4"
    );
    let after = Table::parse(&kubectl(&kubesim, "get deployment/synapse -n butterfly"));
    let row = after.row("synapse");
    assert_eq!(after.cell(row, "READY"), "4/4", "{}", after.text);
    assert_eq!(after.cell(row, "UP-TO-DATE"), "4", "{}", after.text);
    assert_eq!(after.cell(row, "AVAILABLE"), "4", "{}", after.text);

    let pods = Table::parse(&kubectl(&kubesim, "get pods -n butterfly -l app=synapse"));
    assert_eq!(pods.rows.len(), 4, "{}", pods.text);
    for status in pods.column("STATUS") {
        assert_eq!(status, "Running", "{}", pods.text);
    }
    for ready in pods.column("READY") {
        assert_eq!(ready, "1/1", "{}", pods.text);
    }

    // `-o wide` adds the NODE column, which names the node each pod is
    // bound to.
    let wide = Table::parse(&kubectl(&kubesim, "get pods -n butterfly -o wide"));
    assert!(wide.names().contains(&"NODE"), "{}", wide.text);
    let synapse = get_json(&kubesim, "pods -l app=synapse");
    for pod in items(&synapse) {
        let name = name_of(pod);
        let bound_to = pod["spec"]["nodeName"].as_str().unwrap_or("");
        assert!(!bound_to.is_empty(), "{name} is not bound to a node");
        assert_eq!(
            wide.cell(wide.row(&name), "NODE"),
            bound_to,
            "{}",
            wide.text
        );
    }
}

#[test]
fn verification_after_scaling_reaches_every_pod() {
    let kubesim = KubesimProcess::start("butterfly");
    scale(&kubesim, "deployment/synapse", 4);
    rollout_status(&kubesim, "deployment/synapse");
    let ips = pod_ips(&kubesim, "app=synapse");
    assert_eq!(ips.len(), 4, "{ips:?}");

    // The endpoints controller may lag the rollout by one sync.
    let addresses = wait_for("4 synapse endpoint addresses", || {
        let text = jsonpath(
            &kubesim,
            "endpoints/synapse",
            "{.subsets[*].addresses[*].ip}",
        );
        let addresses: BTreeSet<String> = text.split_whitespace().map(str::to_string).collect();
        if addresses.len() == 4 {
            Ok(addresses)
        } else {
            Err(text)
        }
    });
    assert_eq!(addresses, ips, "endpoints are the synapse pods");
    let endpoints = Table::parse(&kubectl(&kubesim, "get endpoints -n butterfly synapse"));
    let listed_endpoints = endpoints.cell(endpoints.row("synapse"), "ENDPOINTS");
    // The server-side table prints three addresses and counts the rest.
    assert!(
        listed_endpoints.ends_with("+ 1 more..."),
        "{}",
        endpoints.text
    );

    let service = kubectl(&kubesim, "describe svc -n butterfly synapse");
    assert_eq!(describe_field(&service, "Selector:"), "app=synapse");
    assert_eq!(describe_field(&service, "TargetPort:"), "8080/TCP");
    assert_eq!(describe_field(&service, "Endpoints:"), listed_endpoints);

    // The runbook's health loop: `get -o name`, then curl inside each pod.
    let names = kubectl(&kubesim, "get pods -n butterfly -l app=synapse -o name");
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for pod in names {
        assert!(pod.starts_with("pod/"), "-o name printed {pod}");
        let body = exec(&kubesim, pod, "curl -s localhost:8080/actuator/health");
        let health: Value = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("{pod} health is not JSON ({error}): {body}"));
        assert_eq!(health["status"], "UP", "{pod}: {body}");
    }

    let top = Table::parse(&kubectl(&kubesim, "top pods -n butterfly -l app=synapse"));
    assert_eq!(
        top.names(),
        ["NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{}",
        top.text
    );
    let listed = get_json(&kubesim, "pods -l app=synapse");
    let expected: BTreeSet<String> = items(&listed).iter().map(name_of).collect();
    assert_eq!(top.first_cells(), expected, "{}", top.text);
    for cpu in top.column("CPU(cores)") {
        let millicores = cpu.strip_suffix('m').and_then(|n| n.parse::<u64>().ok());
        assert!(millicores.is_some(), "CPU {cpu:?} in:\n{}", top.text);
    }
    for memory in top.column("MEMORY(bytes)") {
        let mebibytes = memory
            .strip_suffix("Mi")
            .and_then(|n| n.parse::<u64>().ok());
        assert!(mebibytes.is_some(), "memory {memory:?} in:\n{}", top.text);
    }
}

/// State code and address of each node row of `nodetool status`, such as
/// `("UN", "10.244.0.4")`.
fn nodetool_rows(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let state = fields.next()?;
            let address = fields.next()?;
            let is_state = state.len() == 2
                && matches!(state.as_bytes()[0], b'U' | b'D')
                && matches!(state.as_bytes()[1], b'N' | b'L' | b'J' | b'M');
            is_state.then(|| (state.to_string(), address.to_string()))
        })
        .collect()
}

/// Waits until `nodetool status` on cassandra-0 lists `count` nodes, all
/// Up/Normal, and returns their addresses.
fn wait_for_normal_ring(kubesim: &KubesimProcess, count: usize) -> BTreeSet<String> {
    wait_for(&format!("{count} Cassandra nodes UN"), || {
        let status = exec(kubesim, "cassandra-0", "nodetool status");
        let rows = nodetool_rows(&status);
        if rows.len() == count && rows.iter().all(|(state, _)| state == "UN") {
            Ok(rows.into_iter().map(|(_, address)| address).collect())
        } else {
            Err(status)
        }
    })
}

#[test]
fn cassandra_node_joins_repairs_and_decommissions() {
    let kubesim = KubesimProcess::start("butterfly");

    scale(&kubesim, "statefulset/cassandra", 4);
    rollout_status(&kubesim, "statefulset/cassandra");
    assert_eq!(
        jsonpath(&kubesim, "statefulset/cassandra", "{.status.readyReplicas}"),
        "4"
    );
    let new_ip = jsonpath(&kubesim, "pod/cassandra-3", "{.status.podIP}");
    assert!(!new_ip.is_empty(), "cassandra-3 has no pod IP");

    let status = exec(&kubesim, "cassandra-0", "nodetool status");
    let rows = nodetool_rows(&status);
    assert_eq!(rows.len(), 4, "{status}");
    let new_state = rows
        .iter()
        .find(|(_, ip)| *ip == new_ip)
        .map(|(state, _)| state.as_str());
    assert!(
        matches!(new_state, Some("UJ" | "UN")),
        "cassandra-3 ({new_ip}) is neither joining nor normal:\n{status}"
    );
    // The runbook waits until the new node shows UN before the repair.
    let ring = wait_for_normal_ring(&kubesim, 4);
    assert!(ring.contains(&new_ip), "{ring:?}");

    let repair = exec(&kubesim, "cassandra-0", "nodetool repair");
    assert!(repair.contains("Repair completed successfully"), "{repair}");
    assert!(!repair.contains("failed"), "{repair}");

    exec(&kubesim, "cassandra-3", "nodetool decommission");
    let ring = wait_for_normal_ring(&kubesim, 3);
    assert!(!ring.contains(&new_ip), "{ring:?}");

    scale(&kubesim, "statefulset/cassandra", 3);
    wait_for("cassandra-3 to be deleted", || {
        let output = kubesim.kubectl(&["get", "pod/cassandra-3", "-n", "butterfly"]);
        if output.status.success() {
            Err(String::from_utf8_lossy(&output.stdout).to_string())
        } else {
            Ok(())
        }
    });
    rollout_status(&kubesim, "statefulset/cassandra");
    assert_eq!(
        jsonpath(&kubesim, "statefulset/cassandra", "{.status.readyReplicas}"),
        "3"
    );
    assert_eq!(wait_for_normal_ring(&kubesim, 3), ring);
}

#[test]
fn hpa_max_replicas_patch_strategic_and_merge() {
    let kubesim = KubesimProcess::start("butterfly");

    let hpas = Table::parse(&kubectl(&kubesim, "get hpa -n butterfly"));
    let services = [
        "capsule",
        "nexus",
        "odyssey-core",
        "odyssey-horizonbox",
        "odyssey-quantumroom",
        "perception",
        "plato",
        "synapse",
    ];
    let expected: BTreeSet<String> = services.iter().map(|s| format!("{s}-hpa")).collect();
    assert_eq!(hpas.first_cells(), expected, "{}", hpas.text);
    let synapse = hpas.row("synapse-hpa");
    assert_eq!(hpas.cell(synapse, "MINPODS"), "2", "{}", hpas.text);
    assert_eq!(hpas.cell(synapse, "MAXPODS"), "12", "{}", hpas.text);
    let capsule = hpas.row("capsule-hpa");
    assert_eq!(hpas.cell(capsule, "MINPODS"), "4", "{}", hpas.text);
    assert_eq!(hpas.cell(capsule, "MAXPODS"), "12", "{}", hpas.text);

    // The runbook's patch has no --type, so kubectl sends a strategic
    // merge patch; -v=8 logs the request headers on stderr.
    let output = kubesim.kubectl(&[
        "patch",
        "hpa/synapse-hpa",
        "-n",
        "butterfly",
        "-p",
        r#"{"spec":{"maxReplicas": 15}}"#,
        "-v=8",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Content-Type: application/strategic-merge-patch+json"),
        "{stderr}"
    );
    assert_eq!(
        jsonpath(&kubesim, "hpa/synapse-hpa", "{.spec.maxReplicas}"),
        "15"
    );
    assert_eq!(
        jsonpath(&kubesim, "hpa/synapse-hpa", "{.spec.minReplicas}"),
        "2"
    );
    assert_eq!(
        jsonpath(&kubesim, "hpa/synapse-hpa", "{.spec.scaleTargetRef.name}"),
        "synapse"
    );

    let patched = kubesim.kubectl_ok(&[
        "patch",
        "hpa/capsule-hpa",
        "-n",
        "butterfly",
        "-p",
        r#"{"spec":{"maxReplicas": 15}}"#,
        "--type=merge",
    ]);
    assert_eq!(
        patched.trim(),
        "horizontalpodautoscaler.autoscaling/capsule-hpa patched"
    );
    assert_eq!(
        jsonpath(&kubesim, "hpa/capsule-hpa", "{.spec.maxReplicas}"),
        "15"
    );
    assert_eq!(
        jsonpath(&kubesim, "hpa/capsule-hpa", "{.spec.minReplicas}"),
        "4"
    );

    let hpas = Table::parse(&kubectl(&kubesim, "get hpa -n butterfly"));
    for name in ["synapse-hpa", "capsule-hpa"] {
        assert_eq!(hpas.cell(hpas.row(name), "MAXPODS"), "15", "{}", hpas.text);
    }
    let described = kubectl(&kubesim, "describe hpa/synapse-hpa -n butterfly");
    assert_eq!(describe_field(&described, "Min replicas:"), "2");
    assert_eq!(describe_field(&described, "Max replicas:"), "15");
}

/// The runbook's vertical scaling patch with `[service]` set to synapse.
const RESOURCES_PATCH: &str = r#"
{
  "spec": {
    "template": {
      "spec": {
        "containers": [{
          "name": "synapse",
          "resources": {
            "requests": {
              "cpu": "1",
              "memory": "4Gi"
            },
            "limits": {
              "cpu": "4",
              "memory": "8Gi"
            }
          }
        }]
      }
    }
  }
}"#;

/// Lists the `pod-template-hash` labels of the synapse pods.
fn template_hashes(kubesim: &KubesimProcess) -> BTreeSet<String> {
    let list = get_json(kubesim, "pods -l app=synapse");
    items(&list)
        .iter()
        .filter_map(|p| p["metadata"]["labels"]["pod-template-hash"].as_str())
        .map(str::to_string)
        .collect()
}

#[test]
fn vertical_resources_patch_rolls_out_synapse() {
    let kubesim = KubesimProcess::start("butterfly");
    let before = get_json(&kubesim, "deployment/synapse");
    let old_hashes = template_hashes(&kubesim);

    let patched = kubesim.kubectl_ok(&[
        "patch",
        "deployment/synapse",
        "-n",
        "butterfly",
        "-p",
        RESOURCES_PATCH,
    ]);
    assert_eq!(patched.trim(), "deployment.apps/synapse patched");

    let after = get_json(&kubesim, "deployment/synapse");
    let containers = after["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers list");
    assert_eq!(containers.len(), 1, "{containers:?}");
    let container = &containers[0];
    let resources = &container["resources"];
    assert_eq!(resources["requests"]["cpu"], "1", "{resources}");
    assert_eq!(resources["requests"]["memory"], "4Gi", "{resources}");
    assert_eq!(resources["limits"]["cpu"], "4", "{resources}");
    assert_eq!(resources["limits"]["memory"], "8Gi", "{resources}");
    let old_container = &before["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "synapse");
    assert_eq!(container["image"], old_container["image"]);
    assert_eq!(container["env"], old_container["env"]);
    assert_eq!(container["ports"], old_container["ports"]);
    assert_eq!(container["readinessProbe"], old_container["readinessProbe"]);
    let old_generation = before["metadata"]["generation"].as_i64().unwrap_or(0);
    assert_eq!(
        after["metadata"]["generation"].as_i64(),
        Some(old_generation + 1),
        "the template change bumps the generation"
    );

    rollout_status(&kubesim, "deployment/synapse");
    assert_eq!(
        jsonpath(
            &kubesim,
            "deployment/synapse",
            "{.status.observedGeneration}"
        ),
        (old_generation + 1).to_string()
    );
    wait_for_ready_pods(&kubesim, "app=synapse", 3);
    let new_hashes = template_hashes(&kubesim);
    assert_eq!(new_hashes.len(), 1, "one template after the rollout");
    assert!(
        new_hashes.is_disjoint(&old_hashes),
        "the pods were replaced: before {old_hashes:?}, after {new_hashes:?}"
    );
    let pods = get_json(&kubesim, "pods -l app=synapse");
    for pod in items(&pods) {
        let running = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(running, resources, "{}", name_of(pod));
    }
}

#[test]
fn jvm_options_change_reaches_heap_log_line() {
    let kubesim = KubesimProcess::start("butterfly");
    let env_path = "{.spec.template.spec.containers[0].env}";
    let read_env = || -> Vec<Value> {
        let text = jsonpath(&kubesim, "deployment/synapse", env_path);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("env {text}: {error}"))
    };
    let before = read_env();

    let output = kubesim.kubectl_ok(&[
        "set",
        "env",
        "deployment/synapse",
        "JAVA_OPTS=-Xms2g -Xmx4g -XX:+UseG1GC",
        "-n",
        "butterfly",
    ]);
    assert_eq!(output.trim(), "deployment.apps/synapse env updated");

    let after = read_env();
    let java_opts: Vec<&Value> = after.iter().filter(|v| v["name"] == "JAVA_OPTS").collect();
    assert_eq!(java_opts.len(), 1, "{after:?}");
    assert_eq!(java_opts[0]["value"], "-Xms2g -Xmx4g -XX:+UseG1GC");
    let others = |env: &[Value]| -> Vec<Value> {
        env.iter()
            .filter(|v| v["name"] != "JAVA_OPTS")
            .cloned()
            .collect()
    };
    assert!(others(&before).len() >= 2, "{before:?}");
    assert_eq!(others(&after), others(&before), "other variables kept");

    rollout_status(&kubesim, "deployment/synapse");
    let pods = wait_for_ready_pods(&kubesim, "app=synapse", 3);
    // A pod logs its heap line a moment after it starts, so poll. Without
    // --tail, `logs -l` prints the last 10 lines of each pod.
    let heap = wait_for("a heap line from every synapse pod", || {
        let logs = kubectl(&kubesim, "logs -n butterfly -l app=synapse");
        let heap: Vec<String> = grep(&logs, "heap", "")
            .into_iter()
            .map(str::to_string)
            .collect();
        if heap.len() == pods.len() {
            Ok(heap)
        } else {
            Err(logs)
        }
    });
    for line in &heap {
        assert!(line.contains("initial=2048m max=4096m"), "{line}");
    }
}

#[test]
fn startup_logs_report_backend_connections() {
    let kubesim = KubesimProcess::start("butterfly");
    for (app, backend) in [("capsule", "cassandra"), ("synapse", "redis")] {
        // `grep -i "BACKEND.*connected"` over `kubectl logs -l app=APP`.
        wait_for(&format!("a {backend} connected line from {app}"), || {
            let logs = kubectl(&kubesim, &format!("logs -n butterfly -l app={app}"));
            if grep(&logs, backend, "connected").is_empty() {
                Err(logs)
            } else {
                Ok(())
            }
        });
    }
}

#[test]
fn kafka_broker_joins_and_perception_group_lists_partitions() {
    let kubesim = KubesimProcess::start("butterfly");
    scale(&kubesim, "statefulset/kafka", 4);
    rollout_status(&kubesim, "statefulset/kafka");
    assert_eq!(
        jsonpath(&kubesim, "statefulset/kafka", "{.status.readyReplicas}"),
        "4"
    );

    let versions = exec(
        &kubesim,
        "kafka-0",
        "kafka-broker-api-versions.sh --bootstrap-server localhost:9092",
    );
    // One `host:port (id: N rack: null) -> (` line per broker.
    let brokers: BTreeSet<String> = versions
        .lines()
        .filter_map(|line| line.split_once("(id: "))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let expected: BTreeSet<String> = (0..4).map(|id| id.to_string()).collect();
    assert_eq!(brokers, expected, "{versions}");

    let described = exec(
        &kubesim,
        "kafka-0",
        "kafka-consumer-groups.sh --bootstrap-server localhost:9092 --describe --group perception-group",
    );
    let group = Table::parse(&described);
    for name in group.column("GROUP") {
        assert_eq!(name, "perception-group", "{described}");
    }
    let topics: BTreeSet<&str> = group.column("TOPIC").into_iter().collect();
    assert!(!topics.is_empty(), "{described}");
    for topic in topics {
        let partition_count = partition_count(&kubesim, topic);
        let partitions: BTreeSet<usize> = group
            .rows
            .iter()
            .filter(|row| group.cell(row, "TOPIC") == topic)
            .map(|row| {
                group
                    .cell(row, "PARTITION")
                    .parse()
                    .expect("partition number")
            })
            .collect();
        assert_eq!(
            partitions,
            (0..partition_count).collect(),
            "one row per partition of {topic}:\n{described}"
        );
    }
    let hosts: BTreeSet<String> = group
        .column("HOST")
        .iter()
        .map(|host| host.trim_start_matches('/').to_string())
        .collect();
    assert_eq!(
        hosts,
        pod_ips(&kubesim, "app=perception"),
        "the consumers are the perception pods:\n{described}"
    );
}

/// Runs `kafka-topics.sh --describe --topic TOPIC` in kafka-0.
fn describe_topic(kubesim: &KubesimProcess, topic: &str) -> String {
    exec(
        kubesim,
        "kafka-0",
        &format!("kafka-topics.sh --bootstrap-server localhost:9092 --describe --topic {topic}"),
    )
}

fn partition_count(kubesim: &KubesimProcess, topic: &str) -> usize {
    let described = describe_topic(kubesim, topic);
    described
        .split_once("PartitionCount: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no PartitionCount in:\n{described}"))
}

/// Broker ids in the `Replicas:` column of `kafka-topics.sh --describe`.
fn replica_brokers(kubesim: &KubesimProcess, topic: &str) -> BTreeSet<String> {
    describe_topic(kubesim, topic)
        .lines()
        .filter_map(|line| line.split_once("Replicas: "))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .flat_map(|ids| ids.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Writes `content` to `path` inside kafka-0 with `sh -c "echo '...' >
/// path"`, the way a runbook user creates a reassignment file. `content`
/// must not contain a single quote.
fn write_kafka_file(kubesim: &KubesimProcess, path: &str, content: &str) {
    assert!(!content.contains('\''), "{content}");
    let script = format!("echo '{content}' > {path}");
    kubesim.kubectl_ok(&[
        "exec",
        "kafka-0",
        "-n",
        "butterfly",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        exec(kubesim, "kafka-0", &format!("cat {path}")).trim(),
        content
    );
}

/// Runs `kafka-reassign-partitions.sh --bootstrap-server localhost:9092
/// ARGS` in kafka-0.
fn reassign(kubesim: &KubesimProcess, args: &str) -> String {
    exec(
        kubesim,
        "kafka-0",
        &format!("kafka-reassign-partitions.sh --bootstrap-server localhost:9092 {args}"),
    )
}

/// Generates a plan that spreads `topic` over `brokers`, writes it to
/// `plan_file`, executes it and waits until `--verify` reports every
/// partition complete.
fn move_topic(kubesim: &KubesimProcess, topic: &str, brokers: &str, plan_file: &str) {
    let topics = format!(r#"{{"version":1,"topics":[{{"topic":"{topic}"}}]}}"#);
    write_kafka_file(kubesim, "/tmp/topics.json", &topics);
    let generated = reassign(
        kubesim,
        &format!("--topics-to-move-json-file /tmp/topics.json --broker-list {brokers} --generate"),
    );
    let proposal = generated
        .split_once("Proposed partition reassignment configuration")
        .and_then(|(_, rest)| rest.lines().find(|line| line.starts_with('{')))
        .unwrap_or_else(|| panic!("no proposed plan in:\n{generated}"));
    write_kafka_file(kubesim, plan_file, proposal);

    let executed = reassign(
        kubesim,
        &format!("--reassignment-json-file {plan_file} --execute"),
    );
    assert!(
        executed.contains("Successfully started partition reassignment"),
        "{executed}"
    );
    wait_for(&format!("reassignment of {topic} onto {brokers}"), || {
        let verified = reassign(
            kubesim,
            &format!("--reassignment-json-file {plan_file} --verify"),
        );
        let partitions = verified.matches("Reassignment of partition").count();
        let complete = verified.matches(" is complete.").count();
        if partitions > 0 && complete == partitions {
            Ok(())
        } else {
            Err(verified)
        }
    });
}

#[test]
fn kafka_partitions_move_onto_and_off_new_broker() {
    let kubesim = KubesimProcess::start("butterfly");
    let topic = "perception.events";
    let original: BTreeSet<String> = ["0", "1", "2"].map(String::from).into();
    assert_eq!(replica_brokers(&kubesim, topic), original);

    scale(&kubesim, "statefulset/kafka", 4);
    rollout_status(&kubesim, "statefulset/kafka");
    move_topic(&kubesim, topic, "0,1,2,3", "/tmp/reassignment.json");
    let spread = replica_brokers(&kubesim, topic);
    assert!(spread.contains("3"), "broker 3 holds replicas: {spread:?}");

    move_topic(&kubesim, topic, "0,1,2", "/tmp/remove-broker-3.json");
    assert_eq!(replica_brokers(&kubesim, topic), original);
    scale(&kubesim, "statefulset/kafka", 3);
    rollout_status(&kubesim, "statefulset/kafka");
    assert_eq!(
        jsonpath(&kubesim, "statefulset/kafka", "{.status.replicas}"),
        "3"
    );
}

#[test]
fn postgres_instances_change_only_with_merge_patch() {
    let kubesim = KubesimProcess::start("butterfly");
    let cluster = "postgresql/butterfly-postgres";
    let patch = r#"{"spec":{"numberOfInstances": 3}}"#;
    assert_eq!(
        jsonpath(&kubesim, cluster, "{.spec.numberOfInstances}"),
        "2"
    );

    // Without --type kubectl sends a strategic merge patch, which the API
    // server rejects for custom resources. -v=6 logs the response status.
    let stderr = kubectl_err(
        &kubesim,
        &["patch", cluster, "-n", "butterfly", "-p", patch, "-v=6"],
    );
    assert!(stderr.contains("415 Unsupported Media Type"), "{stderr}");
    assert!(
        stderr.contains(
            "error: application/strategic-merge-patch+json is not supported by acid.zalan.do/v1, Kind=postgresql"
        ),
        "{stderr}"
    );
    assert_eq!(
        jsonpath(&kubesim, cluster, "{.spec.numberOfInstances}"),
        "2",
        "the rejected patch changed nothing"
    );

    let patched = kubesim.kubectl_ok(&[
        "patch",
        cluster,
        "-n",
        "butterfly",
        "-p",
        patch,
        "--type=merge",
    ]);
    assert_eq!(
        patched.trim(),
        "postgresql.acid.zalan.do/butterfly-postgres patched"
    );
    assert_eq!(
        jsonpath(&kubesim, cluster, "{.spec.numberOfInstances}"),
        "3"
    );
    let pods = wait_for_ready_pods(&kubesim, "cluster-name=butterfly-postgres", 3);
    assert!(
        pods.contains(&"butterfly-postgres-2".to_string()),
        "{pods:?}"
    );
}

/// Number of hash slots the `redis-cli cluster nodes` line of `ip` lists:
/// the fields after the eighth are slots (`N`) or ranges (`A-B`).
fn slots_of(nodes: &str, ip: &str) -> usize {
    let address = format!(" {ip}:6379@");
    let line = nodes
        .lines()
        .find(|line| line.contains(&address))
        .unwrap_or_else(|| panic!("{ip} not in cluster nodes:\n{nodes}"));
    line.split_whitespace()
        .skip(8)
        .map(|range| match range.split_once('-') {
            Some((first, last)) => {
                let first: usize = first.parse().expect("slot range start");
                let last: usize = last.parse().expect("slot range end");
                last - first + 1
            }
            None => 1,
        })
        .sum()
}

/// Value of `field` in `redis-cli cluster info` output.
fn cluster_info(info: &str, field: &str) -> String {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in:\n{info}"))
        .to_string()
}

#[test]
fn redis_shard_joins_and_rebalances_with_empty_masters() {
    let kubesim = KubesimProcess::start("butterfly");
    let entry = "redis-0.redis.butterfly.svc.cluster.local:6379";
    let info = exec(&kubesim, "redis-0", "redis-cli cluster info");
    assert_eq!(cluster_info(&info, "cluster_state"), "ok", "{info}");
    assert_eq!(cluster_info(&info, "cluster_known_nodes"), "6", "{info}");

    scale(&kubesim, "statefulset/redis", 9);
    rollout_status(&kubesim, "statefulset/redis");
    assert_eq!(
        jsonpath(&kubesim, "statefulset/redis", "{.status.readyReplicas}"),
        "9"
    );

    let added = exec(
        &kubesim,
        "redis-0",
        &format!(
            "redis-cli --cluster add-node redis-6.redis.butterfly.svc.cluster.local:6379 {entry}"
        ),
    );
    assert!(added.contains("[OK] New node added correctly."), "{added}");
    let new_ip = jsonpath(&kubesim, "pod/redis-6", "{.status.podIP}");
    let nodes = exec(&kubesim, "redis-0", "redis-cli cluster nodes");
    assert_eq!(slots_of(&nodes, &new_ip), 0, "a new master starts empty");

    // The runbook's rebalance leaves empty masters alone, as redis-cli does.
    let plain = exec(
        &kubesim,
        "redis-0",
        &format!("redis-cli --cluster rebalance {entry}"),
    );
    assert!(plain.contains("No rebalancing needed"), "{plain}");
    let nodes = exec(&kubesim, "redis-0", "redis-cli cluster nodes");
    assert_eq!(slots_of(&nodes, &new_ip), 0, "{nodes}");

    let rebalanced = exec(
        &kubesim,
        "redis-0",
        &format!("redis-cli --cluster rebalance {entry} --cluster-use-empty-masters"),
    );
    assert!(rebalanced.contains("Moving "), "{rebalanced}");
    let nodes = exec(&kubesim, "redis-0", "redis-cli cluster nodes");
    // 16384 slots over four masters.
    assert_eq!(slots_of(&nodes, &new_ip), 4096, "{nodes}");

    let info = exec(&kubesim, "redis-0", "redis-cli cluster info");
    assert_eq!(cluster_info(&info, "cluster_state"), "ok", "{info}");
    assert_eq!(
        cluster_info(&info, "cluster_slots_assigned"),
        "16384",
        "{info}"
    );
    assert_eq!(cluster_info(&info, "cluster_known_nodes"), "7", "{info}");
}

/// CPU quantity in millicores: `250m`, `1`, `1.5`.
fn millicores(quantity: &str) -> u64 {
    match quantity.strip_suffix('m') {
        Some(millis) => millis.parse().expect("millicores"),
        None => (quantity.parse::<f64>().expect("cores") * 1000.0).round() as u64,
    }
}

/// CPU requested on each node, as the scheduler counts it: the container
/// requests of every pod bound to the node that has not finished.
fn cpu_requested_per_node(kubesim: &KubesimProcess) -> BTreeMap<String, u64> {
    let text = kubectl(kubesim, "get pods -A -o json");
    let pods: Value = serde_json::from_str(&text).expect("pod list JSON");
    let mut requested = BTreeMap::new();
    for pod in items(&pods) {
        let Some(node) = pod["spec"]["nodeName"].as_str() else {
            continue;
        };
        if matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        ) {
            continue;
        }
        let cpu: u64 = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["resources"]["requests"]["cpu"].as_str())
            .map(millicores)
            .sum();
        *requested.entry(node.to_string()).or_default() += cpu;
    }
    requested
}

#[test]
fn troubleshooting_commands_show_budgets_nodes_and_events() {
    let kubesim = KubesimProcess::start("butterfly");

    let budgets = Table::parse(&kubectl(&kubesim, "get pdb -n butterfly"));
    assert!(
        budgets.names().contains(&"ALLOWED DISRUPTIONS"),
        "{}",
        budgets.text
    );
    let list = get_json(&kubesim, "pdb");
    assert_eq!(budgets.rows.len(), items(&list).len(), "{}", budgets.text);
    for budget in items(&list) {
        let name = name_of(budget);
        assert_eq!(
            budgets.cell(budgets.row(&name), "ALLOWED DISRUPTIONS"),
            budget["status"]["disruptionsAllowed"].to_string(),
            "{}",
            budgets.text
        );
    }
    // minAvailable 2 of 3 ready synapse pods.
    assert_eq!(
        budgets.cell(budgets.row("synapse-pdb"), "ALLOWED DISRUPTIONS"),
        "1"
    );

    let requested = cpu_requested_per_node(&kubesim);
    let described = kubectl(&kubesim, "describe nodes");
    let sections: Vec<&str> = described
        .split("\nName:")
        .filter(|section| !section.trim().is_empty())
        .collect();
    assert_eq!(sections.len(), requested.len(), "{described}");
    for section in sections {
        let node = section
            .trim_start_matches("Name:")
            .split_whitespace()
            .next()
            .unwrap_or("");
        let allocated = section
            .split_once("Allocated resources:")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("no Allocated resources for {node}:\n{section}"));
        // Rows such as `cpu   11250m (70%)   26 (163%)`.
        let row = |resource: &str| -> Vec<&str> {
            allocated
                .lines()
                .find(|line| line.split_whitespace().next() == Some(resource))
                .unwrap_or_else(|| panic!("no {resource} row for {node}:\n{allocated}"))
                .split_whitespace()
                .collect()
        };
        let cpu = row("cpu");
        assert_eq!(
            millicores(cpu[1]),
            requested[node],
            "cpu requests of {node}: {cpu:?}"
        );
        assert!(cpu[2].ends_with("%)"), "{cpu:?}");
        let memory = row("memory");
        assert!(memory[2].ends_with("%)"), "{memory:?}");
    }

    let events = kubectl(&kubesim, "describe pod -n butterfly -l app=synapse");
    let synapse = get_json(&kubesim, "pods -l app=synapse");
    assert_eq!(
        events.matches("\nEvents:").count(),
        items(&synapse).len(),
        "{events}"
    );
    for pod in items(&synapse) {
        let assigned = format!(
            "Successfully assigned butterfly/{} to {}",
            name_of(pod),
            pod["spec"]["nodeName"].as_str().unwrap_or("")
        );
        assert!(events.contains(&assigned), "{assigned} in:\n{events}");
    }

    let top = Table::parse(&kubectl(&kubesim, "top nodes"));
    assert!(top.names().contains(&"CPU(cores)"), "{}", top.text);
    assert!(top.names().contains(&"MEMORY(bytes)"), "{}", top.text);
    let nodes: BTreeSet<String> = requested.keys().cloned().collect();
    assert_eq!(top.first_cells(), nodes, "{}", top.text);
}

#[test]
fn unschedulable_scale_reports_failed_scheduling() {
    let kubesim = KubesimProcess::start("butterfly");
    // Each stays within its HPA's maxReplicas, so the HPA keeps the count;
    // together they request more CPU than the three nodes have.
    for (deployment, replicas) in [("capsule", 12), ("odyssey-core", 15), ("perception", 15)] {
        scale(&kubesim, &format!("deployment/{deployment}"), replicas);
    }
    let pending = wait_for("a pending pod that the scheduler rejected", || {
        let list = get_json(&kubesim, "pods --field-selector=status.phase=Pending");
        let rejected = items(&list).iter().find(|pod| {
            pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
        });
        match rejected {
            Some(pod) => Ok(pod.clone()),
            None => {
                let names: Vec<String> = items(&list).iter().map(name_of).collect();
                Err(format!("pending pods: {names:?}"))
            }
        }
    });
    let name = name_of(&pending);
    assert!(pending["spec"]["nodeName"].is_null(), "{name} is bound");

    let described = kubectl(&kubesim, &format!("describe pod -n butterfly {name}"));
    let events = described
        .split_once("\nEvents:")
        .map(|(_, events)| events)
        .unwrap_or_else(|| panic!("no Events section:\n{described}"));
    let failed = events
        .lines()
        .find(|line| line.contains("FailedScheduling"))
        .unwrap_or_else(|| panic!("no FailedScheduling event:\n{events}"));
    assert!(failed.trim_start().starts_with("Warning"), "{failed}");
    assert!(
        failed.contains("0/3 nodes are available: 3 Insufficient cpu."),
        "{failed}"
    );

    // The runbook's form: describe every pod of the app, grep for Events.
    let app = pending["metadata"]["labels"]["app"]
        .as_str()
        .expect("app label");
    let by_label = kubectl(&kubesim, &format!("describe pod -n butterfly -l app={app}"));
    assert!(by_label.contains("FailedScheduling"), "{by_label}");
}

#[test]
fn missing_deployment_reports_not_found() {
    let kubesim = KubesimProcess::start("butterfly");
    let stderr = kubectl_err(
        &kubesim,
        &["get", "deploy", "nonexistent", "-n", "butterfly"],
    );
    assert_eq!(
        stderr.trim(),
        r#"Error from server (NotFound): deployments.apps "nonexistent" not found"#
    );
}
