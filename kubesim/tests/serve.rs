//! The `kubesim serve` binary: URL on the first stdout line, kubeconfig
//! written, graceful exit on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn serve_prints_url_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("kubesim-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args([
            "serve",
            "--scenario",
            "butterfly",
            "--listen",
            "127.0.0.1:0",
            "--timing",
            "fast",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the kubesim binary starts");

    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("a first line");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(written.contains(&format!("server: {url}")), "{written}");
    assert!(written.contains("namespace: butterfly"), "{written}");

    let config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.minor, "32");

    let pid = child.id().unwrap().to_string();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(signalled.success());
    let exit = timeout(WAIT, child.wait())
        .await
        .expect("kubesim exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
