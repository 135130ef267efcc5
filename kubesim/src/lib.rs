//! kubesim: a Kubernetes API emulator that kubectl and kube-rs both accept.
//!
//! Layout and data flow:
//! - [`registry`]: the table of served resources; discovery and routing derive from it.
//! - [`store`]: objects as JSON, the global resourceVersion, watch history.
//! - [`cluster`]: a store plus fault plan and controller timings, shared by all parts.
//! - `patch`: merge, JSON and strategic merge patch.
//! - `server`: the HTTP API (discovery, CRUD, watch, subresources, exec over WebSocket).
//! - [`sim`]: [`Sim`], one cluster in-process (server, scenario, controllers) with
//!   kube-rs clients and kubeconfigs pointing at it; the `kubesim serve` binary wraps it.
//! - `controllers`: Deployment, StatefulSet, scheduler and HPA simulation writing to the store.
//! - `scenario`: the `butterfly` and `large:N` object sets.
//! - `programs`: what `kubectl exec` and the pod proxy run inside simulated pods.

pub mod cluster;
pub mod controllers;
pub mod metrics;
pub mod patch;
pub mod programs;
pub mod registry;
pub mod scenario;
pub mod server;
pub mod sim;
pub mod store;

pub use sim::Sim;
