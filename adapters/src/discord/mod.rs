//! Discord adapter on serenity: application commands and the `!scale`
//! message form, embed previews, approval by reactions.

use commands::config::DiscordConfig;
use commands::engine::{Engine, Reply};
use tokio::sync::{mpsc, watch};

use crate::secret::Secret;

/// Environment variable that replaces `https://discord.com` in every REST
/// URL, so that tests can point the bot at a local fake.
pub const API_BASE_ENV: &str = "DISCORD_API_BASE";

/// What the adapter needs besides the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: DiscordConfig,
    pub token: Secret,
    pub application_id: u64,
    /// Replacement for `https://discord.com`, from [`API_BASE_ENV`].
    pub api_base: Option<String>,
}

/// Runs the Discord adapter until `shutdown` turns true. `routed` carries
/// replies that no request owns (expiry notices, interrupted procedures)
/// for channels named `discord:<channel id>`.
pub async fn run(
    engine: Engine,
    settings: Settings,
    routed: mpsc::Receiver<Reply>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let _ = (engine, settings, routed, shutdown);
    anyhow::bail!("the Discord adapter is not built yet")
}
