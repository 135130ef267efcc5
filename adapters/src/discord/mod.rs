//! Discord adapter on serenity: application commands and the `!scale`
//! message form, embed previews, approval by reactions.
//!
//! Layout:
//! - [`events`] reads gateway events (messages, interactions, reactions)
//!   into plain values and contains the application command definitions.
//! - [`reactions`] turns ✅ and ❌ on a preview into `approve` and `reject`
//!   requests, and after each (re)connect applies the reactions the gateway
//!   did not deliver.
//! - [`replies`] posts the engine's replies: the preview embed with its
//!   reactions, edits of the embed, progress in a thread.
//! - [`render`] builds message bodies within Discord's limits.
//! - [`rest`] sends the REST calls and honours Discord's rate limits,
//!   read by [`ratelimit`].
//!
//! serenity runs the gateway connection (identify, heartbeats, resume).
//! Its REST client is used only for the gateway URL; the adapter's own
//! calls go through [`rest::Rest`].

pub mod events;
pub mod ratelimit;
pub mod reactions;
pub mod render;
pub mod replies;
pub mod rest;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use commands::config::{CommandScope, DiscordConfig};
use commands::engine::{Engine, Reply, Request};
use commands::identity::{Identity, Platform};
use serenity::all::{
    ClientBuilder, CommandInteraction, Context, Event, EventHandler, GatewayIntents, HttpBuilder,
    Interaction, Message, RawEventHandler, Reaction, Ready, ResumedEvent,
};
use serenity::async_trait;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

use crate::chat::{REPLY_QUEUE, channel_name};
use crate::secret::Secret;
use events::MemberInfo;
use replies::Origin;
use rest::Rest;

/// Environment variable that replaces `https://discord.com` in every REST
/// URL, so that tests can point the bot at a local fake.
pub const API_BASE_ENV: &str = "DISCORD_API_BASE";

/// Requests handled at once; further events wait for a slot.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;

/// Maximum wait of an event for a request slot before it is dropped with a
/// log line.
pub const REQUEST_SLOT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a member's roles read through REST are reused.
pub const MEMBER_CACHE_TTL: Duration = Duration::from_secs(60);

/// Entries of the member and channel caches before expired ones are
/// dropped.
const CACHE_PRUNE_SIZE: usize = 1000;

/// Maximum wait for the gateway connection to close at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Settings the adapter needs besides the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: DiscordConfig,
    pub token: Secret,
    pub application_id: u64,
    /// Replacement for `https://discord.com`, from [`API_BASE_ENV`].
    pub api_base: Option<String>,
}

/// Gateway intents: guild messages and their content for the prefix form,
/// reactions on guild messages for approval. Interactions need none.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::GUILD_MESSAGE_REACTIONS
}

/// State shared by the event handler and the reply tasks.
pub(crate) struct Shared {
    pub engine: Engine,
    pub rest: Rest,
    pub config: DiscordConfig,
    /// The bot's own user id, known after READY; 0 before.
    pub bot_user_id: AtomicU64,
    /// Caps the requests handled at once.
    pub slots: Arc<Semaphore>,
    /// (guild, user) → roles read through REST, with the time they were read.
    pub members: std::sync::Mutex<HashMap<(u64, u64), (tokio::time::Instant, MemberInfo)>>,
    /// Channel → guild, learnt from events and REST.
    pub channel_guilds: std::sync::Mutex<HashMap<u64, u64>>,
    /// Channel → parent channel when the channel is a thread, read through
    /// REST.
    pub thread_parents: std::sync::Mutex<HashMap<u64, Option<u64>>>,
    /// Preview messages whose thread this process has started.
    pub threads: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// One missed-reaction scan at a time.
    pub scan: tokio::sync::Mutex<()>,
}

impl Shared {
    pub fn bot_user_id(&self) -> Option<u64> {
        match self.bot_user_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Checks whether the bot takes commands in `channel_id` of `guild_id`.
    /// A thread counts as its parent channel, given as `parent_id` or read
    /// through REST when the event does not carry it.
    pub async fn serves(
        &self,
        guild_id: Option<u64>,
        channel_id: u64,
        parent_id: Option<u64>,
    ) -> bool {
        let guild_ok = match guild_id {
            Some(guild) => self.config.guilds.is_empty() || self.config.guilds.contains(&guild),
            None => false,
        };
        if !guild_ok {
            return false;
        }
        let allowed = &self.config.channels;
        if allowed.is_empty() || allowed.contains(&channel_id) {
            return true;
        }
        let parent = match parent_id {
            Some(parent) => Some(parent),
            None => self.thread_parent(channel_id).await,
        };
        parent.is_some_and(|parent| allowed.contains(&parent))
    }

    /// Returns the parent channel of a thread, or `None` for a channel that
    /// is not a thread. Results are cached, failed reads are not.
    async fn thread_parent(&self, channel_id: u64) -> Option<u64> {
        if let Some(parent) = self
            .thread_parents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&channel_id)
        {
            return *parent;
        }
        let channel = match self.rest.get_channel(channel_id).await {
            Ok(channel) => channel,
            Err(error) => {
                tracing::warn!(%error, channel_id, "failed to read a channel; its commands are ignored");
                return None;
            }
        };
        let parent = events::thread_parent(&channel);
        let mut parents = self
            .thread_parents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if parents.len() >= CACHE_PRUNE_SIZE {
            parents.clear();
        }
        parents.insert(channel_id, parent);
        parent
    }

    pub fn remember_channel(&self, channel_id: u64, guild_id: Option<u64>) {
        if let Some(guild) = guild_id {
            let mut guilds = self
                .channel_guilds
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if guilds.len() >= CACHE_PRUNE_SIZE {
                guilds.clear();
            }
            guilds.insert(channel_id, guild);
        }
    }

    /// Handles one request: the engine's replies go to a reply task of
    /// their own, which lives as long as the request's procedure reports.
    pub async fn submit(self: &Arc<Self>, request: Request, origin: Origin) {
        let slot = match tokio::time::timeout(
            REQUEST_SLOT_TIMEOUT,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(_closed)) => return,
            Err(_elapsed) => {
                tracing::warn!(
                    request.id = %request.trace_id,
                    "no request slot within {REQUEST_SLOT_TIMEOUT:?}; the event is dropped"
                );
                metrics::counter!("scalebot_discord_events_total", "kind" => "dropped")
                    .increment(1);
                return;
            }
        };
        let (sender, receiver) = mpsc::channel(REPLY_QUEUE);
        let span = tracing::info_span!("discord_replies", request.id = %request.trace_id);
        tokio::spawn(replies::post_all(Arc::clone(self), origin, receiver).instrument(span));
        self.engine.handle(request, sender).await;
        drop(slot);
    }
}

/// Builds a request from a Discord user's command text.
pub(crate) fn request(
    trace_id: String,
    delivery_id: String,
    user_id: u64,
    member: &MemberInfo,
    channel_id: u64,
    text: String,
) -> Request {
    Request {
        trace_id,
        delivery_id: Some(delivery_id),
        user: Identity::new(Platform::Discord, &user_id.to_string()),
        roles: member.roles.clone(),
        display_name: member
            .display_name
            .clone()
            .unwrap_or_else(|| user_id.to_string()),
        channel: channel_name(Platform::Discord, &channel_id.to_string()),
        text,
    }
}

/// Runs the Discord adapter until `shutdown` turns true. `routed` carries
/// replies that no request owns (expiry notices, interrupted procedures)
/// for channels named `discord:<channel id>`.
pub async fn run(
    engine: Engine,
    settings: Settings,
    routed: mpsc::Receiver<Reply>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let base = settings
        .api_base
        .clone()
        .unwrap_or_else(|| rest::DEFAULT_API_BASE.to_string());
    tracing::info!(
        api_base = %base,
        commands = settings.config.commands.as_str(),
        guilds = ?settings.config.guilds,
        channels = ?settings.config.channels,
        prefix = %settings.config.prefix,
        threads = settings.config.threads,
        "starting the Discord adapter"
    );
    let rest = Rest::new(&base, settings.token.clone(), settings.application_id)?;
    let shared = Arc::new(Shared {
        engine,
        rest,
        config: settings.config.clone(),
        bot_user_id: AtomicU64::new(0),
        slots: Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)),
        members: std::sync::Mutex::new(HashMap::new()),
        channel_guilds: std::sync::Mutex::new(HashMap::new()),
        thread_parents: std::sync::Mutex::new(HashMap::new()),
        threads: std::sync::Mutex::new(std::collections::HashSet::new()),
        scan: tokio::sync::Mutex::new(()),
    });

    register_commands(&shared).await?;

    let mut http =
        HttpBuilder::new(settings.token.expose()).application_id(settings.application_id.into());
    if let Some(base) = &settings.api_base {
        // serenity sends calls to the proxy only with its limiter off.
        http = http
            .proxy(base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    let mut client = ClientBuilder::new_with_http(http.build(), intents())
        .event_handler(Handler {
            shared: Arc::clone(&shared),
        })
        .raw_event_handler(UnhandledEventLogger)
        .await?;
    let shard_manager = Arc::clone(&client.shard_manager);

    let routed_task = tokio::spawn(
        replies::post_routed(Arc::clone(&shared), routed)
            .instrument(tracing::info_span!("discord_routed_replies")),
    );
    let start_scan = tokio::spawn(
        reactions::scan_missed(Arc::clone(&shared), "start").instrument(tracing::info_span!(
            "discord_reaction_scan",
            trigger = "start"
        )),
    );

    let result = tokio::select! {
        result = client.start() => result.map_err(anyhow::Error::from),
        () = stop_requested(&mut shutdown) => {
            tracing::info!("stopping the Discord adapter");
            if tokio::time::timeout(SHUTDOWN_GRACE, shard_manager.shutdown_all()).await.is_err() {
                tracing::warn!("the gateway connection did not close within {SHUTDOWN_GRACE:?}");
            }
            Ok(())
        }
    };
    routed_task.abort();
    start_scan.abort();
    match &result {
        Ok(()) => tracing::info!("the Discord adapter stopped"),
        Err(error) => tracing::error!(%error, "the Discord gateway connection failed"),
    }
    result
}

/// Returns when `shutdown` turns true or its sender is gone.
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Registers `/scale`, `/capacity` and `/scalebot` in each configured guild,
/// or globally.
async fn register_commands(shared: &Shared) -> anyhow::Result<()> {
    let services: Vec<String> = shared
        .engine
        .config()
        .services
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let definitions = events::command_definitions(&services);
    match shared.config.commands {
        CommandScope::Global => {
            shared.rest.overwrite_commands(None, definitions).await?;
            tracing::info!("registered the application commands globally");
        }
        CommandScope::Guild => {
            for guild in &shared.config.guilds {
                shared
                    .rest
                    .overwrite_commands(Some(*guild), definitions.clone())
                    .await?;
                tracing::info!(guild, "registered the application commands in the guild");
            }
        }
    }
    Ok(())
}

struct Handler {
    shared: Arc<Shared>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _context: Context, ready: Ready) {
        count_event("ready");
        self.shared
            .bot_user_id
            .store(ready.user.id.get(), Ordering::Release);
        tracing::info!(
            bot = ready.user.id.get(),
            guilds = ready.guilds.len(),
            "Discord gateway session ready"
        );
        let shared = Arc::clone(&self.shared);
        tokio::spawn(
            reactions::scan_missed(shared, "ready").instrument(tracing::info_span!(
                "discord_reaction_scan",
                trigger = "ready"
            )),
        );
    }

    async fn resume(&self, _context: Context, _event: ResumedEvent) {
        count_event("resumed");
        tracing::info!("Discord gateway session resumed");
        let shared = Arc::clone(&self.shared);
        tokio::spawn(
            reactions::scan_missed(shared, "resumed").instrument(tracing::info_span!(
                "discord_reaction_scan",
                trigger = "resumed"
            )),
        );
    }

    async fn message(&self, _context: Context, message: Message) {
        count_event("message");
        on_message(&self.shared, message).await;
    }

    async fn interaction_create(&self, _context: Context, interaction: Interaction) {
        count_event("interaction");
        match interaction {
            Interaction::Command(command) => on_command(&self.shared, command).await,
            other => tracing::debug!(kind = ?other.kind(), "interaction of another kind ignored"),
        }
    }

    async fn reaction_add(&self, _context: Context, reaction: Reaction) {
        count_event("reaction");
        match events::ReactionVote::of_reaction(&reaction) {
            Some(vote) => reactions::on_vote(&self.shared, vote).await,
            None => tracing::debug!("reaction without a user id ignored"),
        }
    }
}

fn count_event(kind: &'static str) {
    metrics::counter!("scalebot_discord_events_total", "kind" => kind).increment(1);
}

/// Logs gateway events the model did not recognise, which serenity would
/// otherwise drop without a trace.
struct UnhandledEventLogger;

#[async_trait]
impl RawEventHandler for UnhandledEventLogger {
    async fn raw_event(&self, _context: Context, event: Event) {
        if let Event::Unknown(unknown) = event {
            count_event("unknown");
            tracing::warn!(
                event = %unknown.kind,
                "gateway event not recognised by serenity; it is ignored"
            );
        }
    }
}

async fn on_message(shared: &Arc<Shared>, message: Message) {
    if message.author.bot {
        return;
    }
    let guild_id = message.guild_id.map(|g| g.get());
    let channel_id = message.channel_id.get();
    let Some(text) = events::prefix_text(&message.content, &shared.config.prefix) else {
        return;
    };
    if !shared.serves(guild_id, channel_id, None).await {
        tracing::debug!(
            channel_id,
            ?guild_id,
            "command outside the configured guilds and channels ignored"
        );
        return;
    }
    shared.remember_channel(channel_id, guild_id);
    let member = events::message_member(&message);
    let message_id = message.id.get();
    let request = request(
        format!("discord-{message_id}"),
        format!("discord-message:{message_id}"),
        message.author.id.get(),
        &member,
        channel_id,
        text,
    );
    shared
        .submit(
            request,
            Origin::Message {
                channel_id,
                message_id,
            },
        )
        .await;
}

async fn on_command(shared: &Arc<Shared>, command: CommandInteraction) {
    let interaction_id = command.id.get();
    let channel_id = command.channel_id.get();
    let guild_id = command.guild_id.map(|g| g.get());
    let token = command.token.clone();
    let parent_id = command
        .channel
        .as_ref()
        .filter(|channel| events::is_thread(channel.kind))
        .and_then(|channel| channel.parent_id)
        .map(|parent| parent.get());
    let text = if shared.serves(guild_id, channel_id, parent_id).await {
        events::command_text(&command)
    } else {
        Err("scalebot does not take commands in this channel".to_string())
    };
    let text = match text {
        Ok(text) => text,
        Err(refusal) => {
            let body = serde_json::json!({
                "type": 4,
                "data": { "content": refusal, "flags": render::EPHEMERAL, "allowed_mentions": { "parse": [] } },
            });
            if let Err(error) = shared
                .rest
                .interaction_callback(interaction_id, &token, body)
                .await
            {
                tracing::warn!(%error, interaction_id, "responding to an interaction failed");
            }
            return;
        }
    };
    // The preview reads the cluster, which may take longer than the 3
    // seconds Discord allows for the first response: defer, then edit.
    let deferred = serde_json::json!({ "type": 5 });
    if let Err(error) = shared
        .rest
        .interaction_callback(interaction_id, &token, deferred)
        .await
    {
        tracing::warn!(%error, interaction_id, "deferring an interaction failed; the command is dropped");
        return;
    }
    shared.remember_channel(channel_id, guild_id);
    let member = command
        .member
        .as_deref()
        .map(MemberInfo::of_member)
        .unwrap_or_default();
    let request = request(
        format!("discord-{interaction_id}"),
        format!("discord-interaction:{interaction_id}"),
        command.user.id.get(),
        &member,
        channel_id,
        text,
    );
    shared
        .submit(request, Origin::Interaction { channel_id, token })
        .await;
}
