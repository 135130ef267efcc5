//! [`Sim`]: one simulated cluster running in-process, for tests and the
//! demo. It binds the API server on loopback, loads a scenario, starts the
//! controllers, and hands out kube-rs clients and kubeconfigs pointing at
//! itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::cluster::{Cluster, Timing};
use crate::controllers::{self, Controllers};
use crate::programs::Programs;
use crate::scenario::{self, ScenarioError};
use crate::server::{self, AppState};

/// Namespace that kubeconfigs and clients of a [`Sim`] default to.
pub const DEFAULT_NAMESPACE: &str = "butterfly";

/// Time [`Sim::shutdown`] gives open requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("failed to bind the kubesim API server to {address}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to load scenario {scenario:?}")]
    Scenario {
        scenario: String,
        source: ScenarioError,
    },
    #[error("failed to build a kube client for {url}")]
    Client { url: String, source: kube::Error },
    #[error("failed to write the kubeconfig to {path}")]
    WriteKubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the kubesim API server failed")]
    Server(#[source] std::io::Error),
    #[error("the kubesim API server did not stop within {0:?}")]
    ShutdownTimedOut(Duration),
}

/// A running simulated cluster. Dropping it stops the controllers and the
/// server (open watches end; requests in flight finish).
pub struct Sim {
    address: SocketAddr,
    cluster: Cluster,
    programs: Programs,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    controllers: Option<Controllers>,
}

impl Sim {
    /// Starts a cluster with `scenario` (`butterfly`, `large:N`) on
    /// `127.0.0.1` and a free port.
    ///
    /// Must be called inside a tokio runtime: the server and controllers
    /// run as tasks on it.
    pub fn start(scenario: &str, timing: Timing) -> Result<Sim, SimError> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), scenario, timing)
    }

    /// Like [`Sim::start`], on a given address (port 0 picks a free port).
    pub fn start_on(address: SocketAddr, scenario: &str, timing: Timing) -> Result<Sim, SimError> {
        let bind = |source| SimError::Bind { address, source };
        let listener = std::net::TcpListener::bind(address).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let address = listener.local_addr().map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;

        let cluster = Cluster::new(timing);
        scenario::load(&cluster, scenario).map_err(|source| SimError::Scenario {
            scenario: scenario.to_string(),
            source,
        })?;
        let controllers = controllers::spawn(cluster.clone());

        let programs = Programs::default();
        let (stop, stopped) = watch::channel(false);
        let state = AppState {
            cluster: cluster.clone(),
            programs: programs.clone(),
            address,
            shutdown: stopped.clone(),
        };
        let mut signal = stopped;
        // Ends on `true` or when the sender is dropped with the Sim.
        let shutdown = async move {
            let _ = signal.wait_for(|stop| *stop).await;
        };
        let span = tracing::info_span!("kubesim_server", %address);
        let server = tokio::spawn(server::serve(listener, state, shutdown).instrument(span));
        tracing::info!(%address, scenario, "kubesim started");
        Ok(Sim {
            address,
            cluster,
            programs,
            stop,
            server: Some(server),
            controllers: Some(controllers),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Returns the simulated cluster: store, fault plan and timings.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Returns what runs inside the simulated pods (exec, logs, pod proxy),
    /// shared with the server; [`Programs::advance_clock`] lets tests finish
    /// slow operations such as a Cassandra decommission without waiting.
    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// Renders a kubeconfig without credentials whose current context points
    /// at this server with namespace `butterfly`.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| SimError::WriteKubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Builds the kube-rs configuration of [`Sim::client`]: this server's URL,
    /// namespace `butterfly`, kube-rs defaults otherwise (retries of 429, 503
    /// and 504 included).
    pub fn config(&self) -> kube::Config {
        let url = self
            .url()
            .parse()
            .expect("a socket address forms a valid URL");
        let mut config = kube::Config::new(url);
        config.default_namespace = DEFAULT_NAMESPACE.to_string();
        config
    }

    /// Builds a kube-rs client with kube-rs' default retry of 429, 503 and 504.
    pub fn client(&self) -> Result<kube::Client, SimError> {
        self.build_client(self.config())
    }

    /// Builds a kube-rs client that returns every error at once, for tests
    /// that expect the first injected failure.
    pub fn client_without_retry(&self) -> Result<kube::Client, SimError> {
        let mut config = self.config();
        config.default_retry = false;
        self.build_client(config)
    }

    fn build_client(&self, config: kube::Config) -> Result<kube::Client, SimError> {
        kube::Client::try_from(config).map_err(|source| SimError::Client {
            url: self.url(),
            source,
        })
    }

    /// Resolves when the server task ends (after a shutdown, or if it fails).
    pub async fn wait(&mut self) -> Result<(), SimError> {
        let Some(server) = self.server.as_mut() else {
            return Ok(());
        };
        let result = server.await;
        self.server = None;
        match result {
            Ok(served) => served.map_err(SimError::Server),
            Err(join) => Err(SimError::Server(std::io::Error::other(join))),
        }
    }

    /// Stops the controllers and the server, waiting up to 5 seconds for
    /// requests in flight to finish.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.controllers.take();
        let _ = self.stop.send(true);
        match tokio::time::timeout(SHUTDOWN_GRACE, self.wait()).await {
            Ok(result) => result,
            Err(_) => {
                if let Some(server) = self.server.take() {
                    server.abort();
                }
                Err(SimError::ShutdownTimedOut(SHUTDOWN_GRACE))
            }
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.controllers.take();
        let _ = self.stop.send(true);
        if self.server.is_some() {
            tracing::debug!(address = %self.address, "kubesim stopping");
        }
    }
}

/// Renders a kubeconfig for `server` without credentials, with default
/// namespace `butterfly`.
pub fn kubeconfig_yaml(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: {server}
users:
- name: kubesim
  user: {{}}
contexts:
- name: kubesim
  context:
    cluster: kubesim
    user: kubesim
    namespace: {DEFAULT_NAMESPACE}
current-context: kubesim
preferences: {{}}
"
    )
}
