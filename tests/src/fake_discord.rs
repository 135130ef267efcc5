//! A local fake of Discord for end-to-end tests of the Discord adapter: the
//! REST endpoints the adapter calls under `/api/v10/...` and a gateway
//! WebSocket at `/gateway`, on 127.0.0.1 with a free port.
//!
//! - REST calls are recorded (method, path, JSON body, status) and checked
//!   against Discord's limits: content over 2,000 characters or an embed
//!   over its limits gets 400 with code 50035, as from Discord.
//! - Messages and reactions are kept, so reading reactions through REST
//!   sees reactions added with [`FakeDiscord::add_reaction_silently`]
//!   (made while the bot is disconnected) as well as dispatched ones.
//! - The gateway sends Hello, answers Identify with READY and Resume with
//!   RESUMED, acknowledges heartbeats, and dispatches test events with
//!   sequence numbers. [`FakeDiscord::disconnect`] closes the connection and
//!   holds reconnects until [`FakeDiscord::reconnect`];
//!   [`FakeDiscord::invalidate_session`] makes the bot identify again.
//! - [`FakeDiscord::rate_limit_next`] answers the next REST calls with 429.

mod gateway;
mod payloads;
mod rest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use payloads::{interaction_create, message_create};

/// Bot token the fake accepts in `Authorization: Bot <token>`.
pub const TOKEN: &str = "fake-discord-bot-token";
/// The bot's user id, in READY and as author of its messages.
pub const BOT_USER_ID: u64 = 200_000_000_000_000_001;
pub const APPLICATION_ID: u64 = 700_000_000_000_000_001;
/// The one guild every channel belongs to.
pub const GUILD_ID: u64 = 300_000_000_000_000_001;

/// Maximum wait of [`FakeDiscord::dispatch`] for a gateway session.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// One REST call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path with the query string, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// JSON body; for multipart calls the `payload_json` part, with the
    /// received files listed under `"files"`.
    pub body: Value,
    /// Status of the fake's response.
    pub status: u16,
}

impl Call {
    /// Returns the path without `/api/v10` and without the query string.
    pub fn route(&self) -> &str {
        let path = self.path.split('?').next().unwrap_or(&self.path);
        path.strip_prefix("/api/v10").unwrap_or(path)
    }
}

/// A guild member the fake returns from `GET /guilds/{g}/members/{u}`.
#[derive(Debug, Clone)]
pub struct Member {
    pub roles: Vec<u64>,
    pub bot: bool,
}

/// Commands from the test to the current gateway connection.
enum GatewayCommand {
    Dispatch {
        event: String,
        data: Value,
    },
    Close,
    /// Sends Invalid Session (op 9) that cannot be resumed.
    InvalidSession,
}

#[derive(Default)]
struct Store {
    calls: Vec<Call>,
    next_id: u64,
    /// Message id → message object.
    messages: BTreeMap<u64, Value>,
    /// (message id, emoji) → user ids, in the order they reacted.
    reactions: HashMap<(u64, String), Vec<u64>>,
    members: HashMap<u64, Member>,
    /// Messages that have a thread (the thread's id is the message's id).
    threads: HashSet<u64>,
    /// Thread id → parent channel id.
    thread_parents: HashMap<u64, u64>,
    /// Interaction token → (channel id, original response message id).
    interactions: HashMap<String, (u64, Option<u64>)>,
    /// Calls still to reject with 429, and the `retry_after` to send.
    rate_limited: u32,
    retry_after: f64,
    identifies: u32,
    resumes: u32,
    /// Sequence number of the last dispatch of the session.
    sequence: u64,
    session: u32,
    gateway: Option<mpsc::Sender<GatewayCommand>>,
}

struct State {
    store: Mutex<Store>,
    /// Number of recorded calls, to wake waiters.
    call_count: watch::Sender<usize>,
    /// True while a gateway session is identified or resumed.
    session_up: watch::Sender<bool>,
    /// True while new gateway connections are held (after `disconnect`).
    held: watch::Sender<bool>,
    address: SocketAddr,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        let mut store = self.lock();
        store.next_id += 1;
        900_000_000_000_000_000 + store.next_id
    }
}

/// The running fake. The server stops when this is dropped.
pub struct FakeDiscord {
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeDiscord {
    /// Starts the fake on a free port of 127.0.0.1. The bot user is a
    /// member of the guild, with `bot: true`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Discord");
        let address = listener.local_addr().expect("local address");
        let mut store = Store::default();
        store.members.insert(
            BOT_USER_ID,
            Member {
                roles: Vec::new(),
                bot: true,
            },
        );
        let state = Arc::new(State {
            store: Mutex::new(store),
            call_count: watch::channel(0).0,
            session_up: watch::channel(false).0,
            held: watch::channel(false).0,
            address,
        });
        let app = axum::Router::new()
            .route("/gateway", axum::routing::get(gateway::upgrade))
            .fallback(rest::handle)
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Discord server");
        });
        Self { state, server }
    }

    /// Returns the value for `DISCORD_API_BASE`, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.state.address)
    }

    /// Adds a guild member with `roles`.
    pub fn add_member(&self, user_id: u64, roles: &[u64], bot: bool) {
        self.state.lock().members.insert(
            user_id,
            Member {
                roles: roles.to_vec(),
                bot,
            },
        );
    }

    /// Adds a thread of channel `parent_id`, as a user would start one.
    pub fn add_thread(&self, thread_id: u64, parent_id: u64) {
        self.state
            .lock()
            .thread_parents
            .insert(thread_id, parent_id);
    }

    /// Roles of a member added with [`Self::add_member`].
    pub fn member(&self, user_id: u64) -> Option<Member> {
        self.state.lock().members.get(&user_id).cloned()
    }

    /// Sends a dispatch (op 0) with the next sequence number, once a
    /// gateway session is up.
    pub async fn dispatch(&self, event: &str, data: Value) {
        self.wait_for_session(SESSION_TIMEOUT).await;
        let sender = self
            .state
            .lock()
            .gateway
            .clone()
            .expect("a gateway connection while the session is up");
        sender
            .send(GatewayCommand::Dispatch {
                event: event.to_string(),
                data,
            })
            .await
            .expect("the gateway connection takes the dispatch");
    }

    /// Waits until the bot has identified or resumed on the gateway.
    pub async fn wait_for_session(&self, timeout: Duration) {
        let mut up = self.state.session_up.subscribe();
        tokio::time::timeout(timeout, up.wait_for(|up| *up))
            .await
            .unwrap_or_else(|_| panic!("no gateway session within {timeout:?}"))
            .expect("session state");
    }

    /// Closes the gateway connection (close code 4000, which a client
    /// resumes after) and holds new connections until [`Self::reconnect`],
    /// so that the test can act while the bot is disconnected.
    pub async fn disconnect(&self) {
        self.state.held.send_replace(true);
        self.state.session_up.send_replace(false);
        let sender = self.state.lock().gateway.take();
        if let Some(sender) = sender {
            let _ = sender.send(GatewayCommand::Close).await;
        }
    }

    /// Ends the session with Invalid Session (op 9, not resumable), so the
    /// bot identifies again and gets a new READY; new connections are held
    /// until [`Self::reconnect`] as with [`Self::disconnect`].
    pub async fn invalidate_session(&self) {
        self.state.held.send_replace(true);
        self.state.session_up.send_replace(false);
        let sender = self.state.lock().gateway.take();
        if let Some(sender) = sender {
            let _ = sender.send(GatewayCommand::InvalidSession).await;
        }
    }

    /// Lets the held connection proceed (Hello, then RESUMED or READY).
    pub fn reconnect(&self) {
        self.state.held.send_replace(false);
    }

    /// Identify and Resume messages received so far.
    pub fn sessions(&self) -> (u32, u32) {
        let store = self.state.lock();
        (store.identifies, store.resumes)
    }

    /// Records a reaction without dispatching it, as Discord does for a
    /// reaction made while the bot's gateway connection is down.
    pub fn add_reaction_silently(&self, message_id: u64, emoji: &str, user_id: u64) {
        let mut store = self.state.lock();
        let users = store
            .reactions
            .entry((message_id, emoji.to_string()))
            .or_default();
        if !users.contains(&user_id) {
            users.push(user_id);
        }
    }

    /// Records a reaction and dispatches MESSAGE_REACTION_ADD. With
    /// `with_member`, the event carries the `member` field as in guilds;
    /// without, the bot must read the member through REST.
    pub async fn add_reaction(
        &self,
        message_id: u64,
        emoji: &str,
        user_id: u64,
        with_member: bool,
    ) {
        self.add_reaction_silently(message_id, emoji, user_id);
        let (channel_id, member) = {
            let store = self.state.lock();
            let channel_id = store
                .messages
                .get(&message_id)
                .and_then(|m| m["channel_id"].as_str())
                .and_then(|c| c.parse::<u64>().ok())
                .expect("reaction on a message the fake knows");
            (channel_id, store.members.get(&user_id).cloned())
        };
        let member = if with_member { member } else { None };
        let data = payloads::reaction_add(channel_id, message_id, user_id, emoji, member.as_ref());
        self.dispatch("MESSAGE_REACTION_ADD", data).await;
    }

    /// Responds to the next `count` REST calls (the gateway URL excepted) with
    /// 429 and `retry_after` seconds.
    pub fn rate_limit_next(&self, count: u32, retry_after: f64) {
        let mut store = self.state.lock();
        store.rate_limited = count;
        store.retry_after = retry_after;
    }

    /// Registers an interaction token, so that responses through the
    /// webhook endpoints land in `channel_id`.
    pub fn expect_interaction(&self, token: &str, channel_id: u64) {
        self.state
            .lock()
            .interactions
            .insert(token.to_string(), (channel_id, None));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// Returns a stored message, with its current content and embeds.
    pub fn message(&self, message_id: u64) -> Option<Value> {
        self.state.lock().messages.get(&message_id).cloned()
    }

    /// Messages posted in `channel_id` (a thread's id is its message's id).
    pub fn messages_in(&self, channel_id: u64) -> Vec<Value> {
        let channel = channel_id.to_string();
        self.state
            .lock()
            .messages
            .values()
            .filter(|m| m["channel_id"].as_str() == Some(channel.as_str()))
            .cloned()
            .collect()
    }

    /// Waits for a recorded call that `matches`, for at most `timeout`.
    /// Panics with the calls seen when none matches in time.
    pub async fn wait_for_call(&self, matches: impl Fn(&Call) -> bool, timeout: Duration) -> Call {
        let mut count = self.state.call_count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(call) = self.state.lock().calls.iter().find(|c| matches(c)) {
                return call.clone();
            }
            let changed = tokio::time::timeout_at(deadline, count.changed()).await;
            if changed.is_err() {
                panic!(
                    "no matching call within {timeout:?}; calls:\n{}",
                    self.describe_calls()
                );
            }
        }
    }

    /// Waits until `condition` holds on the fake, checking after every call.
    pub async fn wait_until(
        &self,
        what: &str,
        condition: impl Fn(&Self) -> bool,
        timeout: Duration,
    ) {
        let mut count = self.state.call_count.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        while !condition(self) {
            let tick = tokio::time::sleep(Duration::from_millis(100));
            tokio::select! {
                _ = count.changed() => {}
                _ = tick => {}
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{what}: not within {timeout:?}; calls:\n{}",
                    self.describe_calls()
                );
            }
        }
    }

    /// Lists the calls one per line, for failure messages.
    pub fn describe_calls(&self) -> String {
        self.calls()
            .iter()
            .map(|c| {
                let body = c.body.to_string();
                let body: String = body.chars().take(300).collect();
                format!("{} {} {} {body}", c.status, c.method, c.path)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}
