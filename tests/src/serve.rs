//! `scalebot serve` as a real process on a free port, for the chat adapter
//! tests. Its stderr is collected, so a failing test can show the bot's log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::binary;

/// Maximum time for `scalebot serve` to print its listening address.
pub const SERVE_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of the bot's log kept for failure messages.
const LOG_LINES_KEPT: usize = 2000;

pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts `scalebot serve --config CONFIG --listen 127.0.0.1:0
    /// --kubeconfig KUBECONFIG --redis REDIS` with `env` added to the
    /// environment, and waits until it listens.
    pub fn start(config: &Path, kubeconfig: &Path, redis: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary("scalebot", "scalebot"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--redis", redis])
            .env("RUST_LOG", "info,scalebot=debug,adapters=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start scalebot serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.split("listening on ").nth(1)
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(address.trim().to_string());
                }
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                if lines.len() < LOG_LINES_KEPT {
                    lines.push(line);
                }
            }
        });
        let started = Instant::now();
        let url = loop {
            match receiver.recv_timeout(Duration::from_millis(200)) {
                Ok(url) => break url,
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        std::thread::sleep(Duration::from_millis(200));
                        panic!(
                            "scalebot serve exited with {status} before listening:\n{}",
                            log.lock().unwrap().join("\n")
                        );
                    }
                    assert!(
                        started.elapsed() < SERVE_START_TIMEOUT,
                        "scalebot serve did not listen within {SERVE_START_TIMEOUT:?}:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        };
        Self { child, url, log }
    }

    /// Returns the process id of the bot.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the bot's log so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Waits until the log contains `needle`; panics with the log after
    /// `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("log has no {needle:?} after {timeout:?}:\n{}", self.log());
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns
    /// whether the process exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
