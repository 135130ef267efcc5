//! Identities of the users that requests come from, and the principals that
//! the role lists of the config name.
//!
//! Text forms, used in the config and in audit records:
//! - `slack:U024BE7LH`: a Slack user (ids start with `U`, or `W` on
//!   Enterprise Grid);
//! - `discord:80351110224678912`: a Discord user (a numeric snowflake);
//! - `console:oncall`: a console user name;
//! - `discord-role:<role id>` and `slack-group:S…`: everyone who has that
//!   Discord role or belongs to that Slack user group.
//!
//! Adapters pass the platform roles or groups a user has as a list of ids
//! beside the [`Identity`], so a role principal matches without the domain
//! knowing how each platform looks them up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The forms a user identity may take, for error messages.
pub const IDENTITY_FORMS: &str = "slack:<user id>, discord:<user id> or console:<name>";

/// The forms a role-list entry may take, for error messages.
pub const PRINCIPAL_FORMS: &str = "slack:<user id>, discord:<user id>, discord-role:<role id>, slack-group:<group id> or console:<name>";

/// Maximum length of an id after the prefix. Slack ids are about 11
/// characters and Discord snowflakes at most 20 digits, so anything longer
/// is a paste error.
pub const MAX_ID_LEN: usize = 64;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    #[error("{value:?} is not an identity; expected {expected}")]
    UnknownForm {
        value: String,
        expected: &'static str,
    },
    #[error("{value:?} is not a valid {kind}; expected {expected}")]
    InvalidId {
        value: String,
        kind: &'static str,
        expected: &'static str,
    },
}

/// Chat platform a request arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Slack,
    Discord,
    Console,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Console => "console",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user on one platform. Two identities are equal when platform and
/// user id are equal, so the same person on Slack and on Discord is two
/// identities.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub platform: Platform,
    pub user_id: String,
}

impl Identity {
    /// Builds an identity from an id the adapter has already checked.
    /// Slack ids are stored upper case and console names lower case, the
    /// forms their platforms use, so `console:OnCall` and `console:oncall`
    /// are one user. Discord ids are digits and are kept as given.
    pub fn new(platform: Platform, user_id: &str) -> Self {
        let user_id = match platform {
            Platform::Slack => user_id.to_ascii_uppercase(),
            Platform::Discord => user_id.to_string(),
            Platform::Console => user_id.to_ascii_lowercase(),
        };
        Self { platform, user_id }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.user_id)
    }
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.parse::<Principal>() {
            Ok(Principal::User(identity)) => Ok(identity),
            Ok(_) => Err(IdentityError::UnknownForm {
                value: text.to_string(),
                expected: IDENTITY_FORMS,
            }),
            Err(IdentityError::UnknownForm { value, .. }) => Err(IdentityError::UnknownForm {
                value,
                expected: IDENTITY_FORMS,
            }),
            Err(other) => Err(other),
        }
    }
}

/// Stored as its text form (`slack:U024BE7LH`), so audit records and
/// pending requests read the same as the config.
impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An entry of a role list in the config: one user, or everyone with a
/// Discord role or in a Slack user group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    User(Identity),
    DiscordRole(String),
    SlackGroup(String),
}

impl Principal {
    /// Tells whether `who`, who has the platform roles or groups `roles`,
    /// is covered by this principal. A Discord role matches only Discord
    /// users and a Slack group only Slack users, so a numeric Slack group id
    /// cannot be confused with a Discord role id.
    pub fn matches(&self, who: &Identity, roles: &[String]) -> bool {
        match self {
            Principal::User(identity) => identity == who,
            Principal::DiscordRole(role) => {
                who.platform == Platform::Discord && roles.iter().any(|r| r == role)
            }
            Principal::SlackGroup(group) => {
                who.platform == Platform::Slack
                    && roles.iter().any(|r| r.eq_ignore_ascii_case(group))
            }
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(identity) => identity.fmt(f),
            Principal::DiscordRole(role) => write!(f, "discord-role:{role}"),
            Principal::SlackGroup(group) => write!(f, "slack-group:{group}"),
        }
    }
}

impl FromStr for Principal {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || IdentityError::UnknownForm {
            value: text.to_string(),
            expected: PRINCIPAL_FORMS,
        };
        let (prefix, id) = text.split_once(':').ok_or_else(unknown)?;
        let invalid = |kind, expected| IdentityError::InvalidId {
            value: text.to_string(),
            kind,
            expected,
        };
        match prefix {
            "slack" if is_slack_id(id, &['U', 'W']) => {
                Ok(Principal::User(Identity::new(Platform::Slack, id)))
            }
            "slack" => Err(invalid(
                "Slack user id",
                "U or W followed by letters and digits, e.g. slack:U024BE7LH",
            )),
            "discord" if is_snowflake(id) => {
                Ok(Principal::User(Identity::new(Platform::Discord, id)))
            }
            "discord" => Err(invalid(
                "Discord user id",
                "a numeric snowflake, e.g. discord:80351110224678912",
            )),
            "console" if is_console_name(id) => {
                Ok(Principal::User(Identity::new(Platform::Console, id)))
            }
            "console" => Err(invalid(
                "console name",
                "letters, digits, '.', '_' or '-', e.g. console:oncall",
            )),
            "discord-role" if is_snowflake(id) => Ok(Principal::DiscordRole(id.to_string())),
            "discord-role" => Err(invalid(
                "Discord role id",
                "a numeric snowflake, e.g. discord-role:539082325061836999",
            )),
            "slack-group" if is_slack_id(id, &['S']) => {
                Ok(Principal::SlackGroup(id.to_ascii_uppercase()))
            }
            "slack-group" => Err(invalid(
                "Slack user group id",
                "S followed by letters and digits, e.g. slack-group:S0614TZR7",
            )),
            _ => Err(unknown()),
        }
    }
}

/// Slack ids are one type letter followed by upper-case letters and digits.
/// Lower case is accepted here and upper-cased by the caller.
fn is_slack_id(id: &str, first_letters: &[char]) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    id.len() >= 3
        && id.len() <= MAX_ID_LEN
        && first_letters.contains(&first.to_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Discord snowflakes are unsigned 64-bit integers written in decimal.
fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u64>().is_ok()
}

/// Console names follow the console adapter's `<user>: <command>` rule.
fn is_console_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_each_platform() {
        for text in [
            "slack:U024BE7LH",
            "discord:80351110224678912",
            "console:oncall",
        ] {
            let identity: Identity = text.parse().unwrap();
            assert_eq!(identity.to_string(), text);
        }
    }

    #[test]
    fn identity_normalises_case() {
        let slack: Identity = "slack:u024be7lh".parse().unwrap();
        assert_eq!(slack, Identity::new(Platform::Slack, "U024BE7LH"));
        let console: Identity = "console:OnCall".parse().unwrap();
        assert_eq!(console.user_id, "oncall");
    }

    #[test]
    fn identity_rejects_role_principals() {
        let error = "discord-role:539082325061836999"
            .parse::<Identity>()
            .unwrap_err();
        assert!(error.to_string().contains("is not an identity"), "{error}");
    }

    #[test]
    fn principal_rejects_misspelled_platform() {
        let error = "slak:U1".parse::<Principal>().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("\"slak:U1\" is not an identity; expected {PRINCIPAL_FORMS}")
        );
    }

    #[test]
    fn principal_rejects_malformed_ids() {
        for text in [
            "slack:X024BE7LH",
            "slack:",
            "discord:abc",
            "discord:99999999999999999999999",
            "console:on call",
            "discord-role:role",
            "slack-group:U0614TZR7",
        ] {
            let error = text.parse::<Principal>().unwrap_err();
            assert!(
                matches!(error, IdentityError::InvalidId { .. }),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn discord_role_matches_only_discord_members_with_role() {
        let role: Principal = "discord-role:539082325061836999".parse().unwrap();
        let member = Identity::new(Platform::Discord, "100000000000000003");
        let roles = vec!["539082325061836999".to_string()];
        assert!(role.matches(&member, &roles));
        assert!(!role.matches(&member, &[]));
        let slack_user = Identity::new(Platform::Slack, "U00000001");
        assert!(!role.matches(&slack_user, &roles));
    }

    #[test]
    fn slack_group_matches_members() {
        let group: Principal = "slack-group:S0614TZR7".parse().unwrap();
        let user = Identity::new(Platform::Slack, "U00000001");
        assert!(group.matches(&user, &["S0614TZR7".to_string()]));
        assert!(!group.matches(&user, &["S0000000".to_string()]));
    }

    #[test]
    fn identity_serializes_as_text() {
        let identity = Identity::new(Platform::Discord, "80351110224678912");
        let json = serde_json::to_string(&identity).unwrap();
        assert_eq!(json, "\"discord:80351110224678912\"");
        let back: Identity = serde_json::from_str(&json).unwrap();
        assert_eq!(back, identity);
    }
}
