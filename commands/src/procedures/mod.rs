//! Runbook procedures, one module each. A procedure is a sequence of steps
//! that report progress as they go and return an [`Outcome`] describing the
//! final state, whether it succeeded or not.

pub mod horizontal;

use std::time::Duration;

use thiserror::Error;
use tokio::sync::mpsc;

use crate::cluster::ClusterError;

/// Maximum time a procedure waits for the adapter to take a progress line.
/// A stalled chat connection must not stall the change itself.
pub const PROGRESS_SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum StepError {
    #[error(
        "{workload} changed since the preview (replicas were {previewed}, now {now}); nothing was changed: request a new preview"
    )]
    ChangedSincePreview {
        workload: String,
        previewed: u32,
        now: u32,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Progress lines of one running procedure, sent to the adapter in order.
#[derive(Clone)]
pub struct Progress {
    sender: mpsc::Sender<String>,
}

impl Progress {
    pub fn new(sender: mpsc::Sender<String>) -> Self {
        Self { sender }
    }

    /// Sends one line. A full or closed channel drops the line after
    /// [`PROGRESS_SEND_TIMEOUT`] instead of blocking the procedure.
    pub async fn step(&self, line: String) {
        tracing::info!(progress = %line);
        if self
            .sender
            .send_timeout(line, PROGRESS_SEND_TIMEOUT)
            .await
            .is_err()
        {
            tracing::warn!("progress line dropped: the adapter did not take it in time");
        }
    }
}

/// Final state of a procedure.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub succeeded: bool,
    pub summary: String,
    pub details: Vec<String>,
    pub duration: Duration,
}

impl Outcome {
    pub fn succeeded(summary: String, details: Vec<String>, duration: Duration) -> Self {
        Self {
            succeeded: true,
            summary,
            details,
            duration,
        }
    }

    pub fn failed(summary: String, details: Vec<String>, duration: Duration) -> Self {
        Self {
            succeeded: false,
            summary,
            details,
            duration,
        }
    }
}
