//! Test support: a throwaway `redis-server` and a factory of coordinators over
//! one store. Compiled for tests and with the `test-support` feature.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::types::random_text;
use super::{Coordinator, CoordinatorOptions};

/// Maximum time for a started `redis-server` to reply to PING.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` process on a free port of 127.0.0.1, without persistence.
/// The process is killed when the value is dropped.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it replies to PING.
    ///
    /// Panics when `redis-server` is not on `PATH` or does not start within
    /// [`STARTUP_TIMEOUT`].
    pub fn start() -> Self {
        let binary = find_on_path("redis-server").unwrap_or_else(|| {
            panic!("redis-server not found: install it with `apt-get install redis-server`")
        });
        let port = free_port();
        let mut server = Self {
            binary,
            port,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors are ignored: they mean the process is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server process for `duration` (SIGSTOP, then SIGCONT), as a
    /// stalled server looks to clients: connections stay open, replies do not
    /// come, and the data survives. Blocks the calling thread.
    pub fn pause(&self, duration: Duration) {
        let pid = self
            .child
            .as_ref()
            .expect("the server is running")
            .id()
            .to_string();
        let signal = |name: &str| {
            let status = Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap_or_else(|error| panic!("could not run kill {name}: {error}"));
            assert!(status.success(), "kill {name} {pid} failed: {status}");
        };
        signal("-STOP");
        std::thread::sleep(duration);
        signal("-CONT");
    }

    /// Starts the server again on the same port, with an empty dataset.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("could not run {}: {error}", self.binary.display()));
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if answers_ping(address) {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "redis-server on port {} exited at startup: {status}",
                    self.port
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "redis-server on port {} did not reply to PING within {STARTUP_TIMEOUT:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn answers_ping(address: SocketAddr) -> bool {
    let timeout = Duration::from_millis(200);
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0_u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Finds a port that is free at the moment. Another process may take it
/// before the server binds it, and then the server exits and `start` panics.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

/// Options with short intervals so that queue tests run in about a second:
/// polls every 50 ms, a dead waiter is dropped after 1.5 s, and a Redis
/// command fails after 1 s.
pub fn fast_options() -> CoordinatorOptions {
    CoordinatorOptions {
        command_timeout: Duration::from_secs(1),
        queue_poll_interval: Duration::from_millis(50),
        queue_heartbeat_ttl: Duration::from_millis(1500),
        ..CoordinatorOptions::default()
    }
}

/// Hands out coordinators over one store, as replicas of the bot would see
/// it: clones of one memory store, or separate connections to one Redis
/// server under one random key prefix.
pub struct Harness {
    backend: Backend,
    options: CoordinatorOptions,
}

enum Backend {
    Memory(Coordinator),
    Redis { server: RedisServer, prefix: String },
}

impl Harness {
    pub fn memory(options: CoordinatorOptions) -> Self {
        let coordinator = Coordinator::memory_with(options.clone()).expect("valid options");
        Self {
            backend: Backend::Memory(coordinator),
            options,
        }
    }

    /// Starts a fresh `redis-server` for this harness.
    pub fn redis(options: CoordinatorOptions) -> Self {
        Self {
            backend: Backend::Redis {
                server: RedisServer::start(),
                prefix: format!("test-{}", random_text(8)),
            },
            options,
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.backend, Backend::Redis { .. })
    }

    /// Returns a coordinator over the harness's store. For Redis it opens a new
    /// connection.
    pub async fn coordinator(&self) -> Coordinator {
        match &self.backend {
            Backend::Memory(coordinator) => coordinator.clone(),
            Backend::Redis { server, prefix } => {
                Coordinator::redis_with(&server.url(), prefix, self.options.clone())
                    .await
                    .expect("connect to the test redis-server")
            }
        }
    }

    /// Returns the Redis server, for fault tests.
    pub fn redis_server(&mut self) -> Option<&mut RedisServer> {
        match &mut self.backend {
            Backend::Memory(_) => None,
            Backend::Redis { server, .. } => Some(server),
        }
    }
}
