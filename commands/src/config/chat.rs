//! The `slack` and `discord` sections: which chat platforms the bot joins
//! under `scalebot serve`, and how. Tokens are never written in the file;
//! each comes from its environment variable or from a file the section names.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validate::Problems;
use super::{DURATION_FORMS, format_duration, parse_duration};

/// How long the members of a Slack user group are cached by default.
pub const DEFAULT_GROUP_CACHE: Duration = Duration::from_secs(5 * 60);

/// Slack accepts at most 10 Socket Mode connections per app.
pub const MAX_SOCKET_CONNECTIONS: u32 = 10;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_connections: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_cache: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guilds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<bool>,
}

/// Transport by which Slack reaches the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackMode {
    /// Slack posts signed requests to the bot's HTTP endpoints.
    Http,
    /// The bot opens WebSocket connections to Slack with an app token.
    Socket,
}

impl SlackMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SlackMode::Http => "http",
            SlackMode::Socket => "socket",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    pub mode: SlackMode,
    /// Channel ids the bot takes commands in. Empty means every channel it is in.
    pub channels: Vec<String>,
    /// Files holding the secrets; `None` reads the environment variable.
    pub bot_token_file: Option<PathBuf>,
    pub signing_secret_file: Option<PathBuf>,
    pub app_token_file: Option<PathBuf>,
    pub socket_connections: u32,
    pub group_cache: Duration,
}

/// Scope in which Discord application commands are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandScope {
    /// In each guild of `guilds`; changes show at once.
    Guild,
    /// For the whole application; Discord may take up to an hour to show them.
    Global,
}

impl CommandScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandScope::Guild => "guild",
            CommandScope::Global => "global",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscordConfig {
    pub token_file: Option<PathBuf>,
    pub application_id_file: Option<PathBuf>,
    pub commands: CommandScope,
    /// Guild ids the bot serves.
    pub guilds: Vec<u64>,
    /// Channel ids the bot takes commands in. Empty means every channel it can read.
    pub channels: Vec<u64>,
    /// Prefix of the message form, `!` in `!scale synapse 4`.
    pub prefix: String,
    /// Progress goes to a thread on the preview; `false` posts replies.
    pub threads: bool,
}

pub(super) fn slack(problems: &mut Problems, raw: RawSlack) -> SlackConfig {
    let mode = match raw.mode.as_deref().map(str::trim) {
        None | Some("http") => SlackMode::Http,
        Some("socket") => SlackMode::Socket,
        Some(other) => {
            problems.invalid("slack.mode", format!("{other:?}; expected http or socket"));
            SlackMode::Http
        }
    };
    let mut channels = Vec::new();
    for (position, channel) in raw.channels.iter().enumerate() {
        let channel = channel.trim();
        // Ids are upper case; a lower-case word is a channel name.
        let valid = channel.len() >= 3
            && channel.len() <= 64
            && matches!(channel.chars().next(), Some('C' | 'G' | 'D'))
            && channel
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if valid {
            channels.push(channel.to_string());
        } else {
            problems.invalid(
                format!("slack.channels[{position}]"),
                format!("{channel:?} is not a Slack channel id; expected the id, not the name: C, G or D followed by upper-case letters and digits, e.g. C024BE91L (shown under the channel's details in Slack)"),
            );
        }
    }
    let socket_connections = match raw.socket_connections {
        None => 1,
        Some(count) if (1..=i64::from(MAX_SOCKET_CONNECTIONS)).contains(&count) => count as u32,
        Some(count) => {
            problems.invalid(
                "slack.socket_connections",
                format!("{count}; expected 1 to {MAX_SOCKET_CONNECTIONS}"),
            );
            1
        }
    };
    let group_cache = match raw.group_cache.as_deref() {
        None => DEFAULT_GROUP_CACHE,
        Some(text) => parse_duration(text).unwrap_or_else(|| {
            problems.invalid(
                "slack.group_cache",
                format!("{text:?}; expected {DURATION_FORMS}"),
            );
            DEFAULT_GROUP_CACHE
        }),
    };
    SlackConfig {
        mode,
        channels,
        bot_token_file: raw.bot_token_file.map(PathBuf::from),
        signing_secret_file: raw.signing_secret_file.map(PathBuf::from),
        app_token_file: raw.app_token_file.map(PathBuf::from),
        socket_connections,
        group_cache,
    }
}

pub(super) fn discord(problems: &mut Problems, raw: RawDiscord) -> DiscordConfig {
    let commands = match raw.commands.as_deref().map(str::trim) {
        None | Some("guild") => CommandScope::Guild,
        Some("global") => CommandScope::Global,
        Some(other) => {
            problems.invalid(
                "discord.commands",
                format!("{other:?}; expected guild or global"),
            );
            CommandScope::Guild
        }
    };
    let guilds = snowflakes(problems, "discord.guilds", &raw.guilds);
    if commands == CommandScope::Guild && raw.guilds.is_empty() {
        problems.invalid(
            "discord.guilds",
            "empty, but discord.commands is guild; list the guild ids or set discord.commands: global",
        );
    }
    let channels = snowflakes(problems, "discord.channels", &raw.channels);
    let prefix = raw.prefix.unwrap_or_else(|| "!".to_string());
    if prefix.trim().is_empty()
        || prefix.chars().count() > 5
        || prefix.contains(char::is_whitespace)
    {
        problems.invalid(
            "discord.prefix",
            format!("{prefix:?}; expected 1 to 5 characters without spaces, e.g. \"!\""),
        );
    }
    DiscordConfig {
        token_file: raw.token_file.map(PathBuf::from),
        application_id_file: raw.application_id_file.map(PathBuf::from),
        commands,
        guilds,
        channels,
        prefix,
        threads: raw.threads.unwrap_or(true),
    }
}

fn snowflakes(problems: &mut Problems, key: &str, entries: &[String]) -> Vec<u64> {
    let mut ids = Vec::new();
    for (position, entry) in entries.iter().enumerate() {
        match entry.trim().parse::<u64>() {
            Ok(id) if id > 0 => ids.push(id),
            _ => problems.invalid(
                format!("{key}[{position}]"),
                format!("{entry:?} is not a Discord id; expected a numeric snowflake, e.g. \"1098765432109876543\""),
            ),
        }
    }
    ids
}

pub(super) fn render_slack(config: &SlackConfig) -> RawSlack {
    let path = |path: &Option<PathBuf>| path.as_ref().map(|p| p.display().to_string());
    RawSlack {
        mode: Some(config.mode.as_str().to_string()),
        channels: config.channels.clone(),
        bot_token_file: path(&config.bot_token_file),
        signing_secret_file: path(&config.signing_secret_file),
        app_token_file: path(&config.app_token_file),
        socket_connections: Some(i64::from(config.socket_connections)),
        group_cache: Some(format_duration(config.group_cache)),
    }
}

pub(super) fn render_discord(config: &DiscordConfig) -> RawDiscord {
    let path = |path: &Option<PathBuf>| path.as_ref().map(|p| p.display().to_string());
    RawDiscord {
        token_file: path(&config.token_file),
        application_id_file: path(&config.application_id_file),
        commands: Some(config.commands.as_str().to_string()),
        guilds: config.guilds.iter().map(u64::to_string).collect(),
        channels: config.channels.iter().map(u64::to_string).collect(),
        prefix: Some(config.prefix.clone()),
        threads: Some(config.threads),
    }
}
