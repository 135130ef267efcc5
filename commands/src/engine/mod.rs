//! The request path every adapter shares: parse, authorize, preview, store
//! the pending request, decide approvals atomically, then run the procedure
//! under the operation lock and report each step.
//!
//! Adapters call [`Engine::handle`] with a [`Request`] and a bounded reply
//! queue. Replies that belong to a pending request carry its id, so an
//! adapter can post them in that request's thread.

mod decide;
mod execute;
pub mod expiry;
mod hpa;
mod info;
pub mod recovery;
mod scale;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use crate::catalog::Catalog;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::coordination::{Coordinator, LocalLimiter};
use crate::grammar::{self, Command};
use crate::identity::Identity;
use crate::preview::Impact;
use crate::reply::{self, EngineError};

/// Procedures that may run at once in one bot process. The operation lock
/// already serialises procedures per namespace; this caps the process.
pub const MAX_RUNNING_PROCEDURES: usize = 8;

/// Maximum time to wait for the adapter to take a reply.
pub const REPLY_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages one user may send in [`FLOOD_WINDOW`] before the process drops
/// the rest without touching Redis or the API server. Shared per-requester
/// limits on scale requests come from the configuration.
pub const FLOOD_LIMIT: u32 = 30;
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// Maximum length of a message the engine parses. Commands are short; a longer text is
/// a paste by mistake, and echoing it back would exceed chat size limits.
pub const MAX_MESSAGE_BYTES: usize = 2000;

/// How long a platform delivery id is remembered for de-duplication. Slack
/// retries an unacknowledged delivery within minutes; an hour covers that.
pub const DELIVERY_DEDUP_TTL: Duration = Duration::from_secs(60 * 60);

/// One chat message addressed to the bot.
#[derive(Debug, Clone)]
pub struct Request {
    /// Id for logs, unique per incoming message.
    pub trace_id: String,
    /// Platform delivery id (Slack trigger id, Discord interaction id) used
    /// to drop redelivered messages; `None` where the platform has none.
    pub delivery_id: Option<String>,
    pub user: Identity,
    /// Platform roles or groups of the user (Discord role ids, Slack group ids).
    pub roles: Vec<String>,
    pub display_name: String,
    pub channel: String,
    pub text: String,
}

/// Content of one reply to the chat.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// A reply for the user who sent the message.
    Text(String),
    /// News for everyone in the channel, such as a freeze.
    Notice(String),
    Error(String),
    Preview {
        request_id: String,
        impact: Box<Impact>,
    },
    /// A pending request was decided or expired; adapters update its
    /// preview (remove the controls, show the decision).
    Decided {
        decision: Decided,
        text: String,
    },
    Progress(String),
    Result {
        succeeded: bool,
        summary: String,
        details: Vec<String>,
    },
}

/// Way a pending request left the pending state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Approved,
    Rejected,
    Cancelled,
    Expired,
}

impl Decided {
    pub fn as_str(self) -> &'static str {
        match self {
            Decided::Approved => "approved",
            Decided::Rejected => "rejected",
            Decided::Cancelled => "cancelled",
            Decided::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub channel: String,
    /// Pending request the reply belongs to, for threading.
    pub request_id: Option<String>,
    pub body: ReplyBody,
}

impl Reply {
    pub fn new(channel: &str, request_id: Option<String>, body: ReplyBody) -> Self {
        Self {
            channel: channel.to_string(),
            request_id,
            body,
        }
    }
}

/// Bounded queue of replies towards one adapter.
pub type Replies = mpsc::Sender<Reply>;

struct Inner {
    config: Config,
    catalog: Catalog,
    coordinator: Coordinator,
    cluster: Cluster,
    /// Identifies this process as a lock owner across replicas.
    instance: String,
    procedures: Arc<Semaphore>,
    flood: LocalLimiter,
    /// Ids of the requests whose procedures run in this process.
    running: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Set at shutdown: approved requests that have not started yet are
    /// reported and dropped instead of started.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// The shared request path. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn new(
        config: Config,
        coordinator: Coordinator,
        cluster: Cluster,
        instance: String,
    ) -> Self {
        let catalog = Catalog::from_config(&config);
        Self {
            inner: Arc::new(Inner {
                config,
                catalog,
                coordinator,
                cluster,
                instance,
                procedures: Arc::new(Semaphore::new(MAX_RUNNING_PROCEDURES)),
                flood: LocalLimiter::new(FLOOD_LIMIT, FLOOD_WINDOW)
                    .expect("FLOOD_LIMIT and FLOOD_WINDOW are positive"),
                running: std::sync::Mutex::new(std::collections::HashSet::new()),
                stopping: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn coordinator(&self) -> &Coordinator {
        &self.inner.coordinator
    }

    /// Handles one request. Returns once the immediate reply is queued;
    /// an approved procedure keeps running in the background and reports
    /// through `replies`.
    pub async fn handle(&self, request: Request, replies: Replies) {
        let span = tracing::info_span!(
            "request",
            request.id = %request.trace_id,
            user = %request.user,
            channel = %request.channel,
            service = tracing::field::Empty,
        );
        async {
            if let Err(error) = self.dispatch(&request, &replies).await {
                let text = reply::describe(&error, &request.trace_id);
                send(
                    &replies,
                    Reply::new(&request.channel, error.request_id(), ReplyBody::Error(text)),
                )
                .await;
            }
        }
        .instrument(span)
        .await
    }

    async fn dispatch(&self, request: &Request, replies: &Replies) -> Result<(), EngineError> {
        if let Err(retry_after) = self.inner.flood.check(&request.user.to_string()) {
            tracing::warn!(user = %request.user, "message flood: request dropped");
            return Err(EngineError::RateLimited { retry_after });
        }
        if let Some(delivery) = &request.delivery_id {
            let first = self
                .inner
                .coordinator
                .first_delivery(delivery, DELIVERY_DEDUP_TTL)
                .await?;
            if !first {
                tracing::info!(delivery, "dropped a redelivered message");
                return Ok(());
            }
        }
        if request.text.len() > MAX_MESSAGE_BYTES {
            return Err(EngineError::MessageTooLong {
                bytes: request.text.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let command = grammar::parse(&request.text)?;
        match command {
            Command::Scale { service, change } => {
                scale::request(self, request, &service, change, replies).await
            }
            Command::Approve { id } => decide::approve(self, request, id, replies).await,
            Command::Reject { id, reason } => {
                decide::reject(self, request, id, reason, replies).await
            }
            Command::Cancel { id } => decide::cancel(self, request, id, replies).await,
            Command::Status { service } => info::status(self, request, service, replies).await,
            Command::Locks => info::locks(self, request, replies).await,
            Command::History { service } => info::history(self, request, service, replies).await,
            Command::Freeze { reason } => info::freeze(self, request, reason, replies).await,
            Command::Unfreeze => info::unfreeze(self, request, replies).await,
            Command::Help { verb } => {
                let text = grammar::help(verb.as_deref());
                send(
                    replies,
                    Reply::new(&request.channel, None, ReplyBody::Text(text)),
                )
                .await;
                Ok(())
            }
            Command::Hpa {
                service,
                bound,
                value,
            } => hpa::request(self, request, &service, bound, value, replies).await,
            Command::Capacity => info::capacity(self, request, replies).await,
        }
    }

    /// Returns the ids of the requests whose procedures run in this process.
    pub(crate) fn running_ids(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frees the memory of flood-limit entries of users who went quiet.
    pub fn forget_idle_users(&self) {
        self.inner.flood.forget_idle_keys();
    }

    /// Waits until no procedure runs, for at most `timeout`. Returns false
    /// when procedures were still running at the deadline.
    /// Stops starting procedures: approved requests still waiting for a
    /// slot or the lock are reported as not started. Running ones go on.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// Resolves once [`Self::begin_shutdown`] has been called.
    pub(crate) async fn stopped(&self) {
        let mut stopping = self.inner.stopping.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let all = MAX_RUNNING_PROCEDURES as u32;
        match tokio::time::timeout(timeout, self.inner.procedures.acquire_many(all)).await {
            Ok(Ok(_permits)) => true,
            Ok(Err(_closed)) => true,
            Err(_elapsed) => false,
        }
    }
}

/// Removes control characters (terminal escapes) and bidirectional
/// formatting characters from free text such as a reason, because it is
/// stored in the audit log and shown to other users.
pub(crate) fn sanitize_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'))
        .collect()
}

/// Queues a reply; a stalled adapter loses the reply after
/// [`REPLY_SEND_TIMEOUT`] instead of blocking the engine.
pub(crate) async fn send(replies: &Replies, reply: Reply) {
    if replies
        .send_timeout(reply, REPLY_SEND_TIMEOUT)
        .await
        .is_err()
    {
        tracing::warn!("reply dropped: the adapter did not take it within {REPLY_SEND_TIMEOUT:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize_text;

    #[test]
    fn sanitize_text_drops_escapes_and_bidi() {
        assert_eq!(sanitize_text("\u{1b}[31mRED\u{1b}[0m"), "[31mRED[0m");
        assert_eq!(sanitize_text("a\u{202E}b\u{2066}c"), "abc");
        assert_eq!(
            sanitize_text("incident 42: db — failover"),
            "incident 42: db — failover"
        );
    }
}
