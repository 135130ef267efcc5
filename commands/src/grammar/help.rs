//! The verbs of the command language with their usage lines and help text.

use std::fmt::Write as _;

use crate::catalog::MAX_REPLICAS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Scale,
    Status,
    Approve,
    Reject,
    Cancel,
    Locks,
    History,
    Freeze,
    Unfreeze,
    Hpa,
    Capacity,
    Help,
}

impl Verb {
    /// Every verb, in the order `help` lists them.
    pub const ALL: [Verb; 12] = [
        Verb::Scale,
        Verb::Status,
        Verb::Approve,
        Verb::Reject,
        Verb::Cancel,
        Verb::Locks,
        Verb::History,
        Verb::Freeze,
        Verb::Unfreeze,
        Verb::Hpa,
        Verb::Capacity,
        Verb::Help,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verb::Scale => "scale",
            Verb::Status => "status",
            Verb::Approve => "approve",
            Verb::Reject => "reject",
            Verb::Cancel => "cancel",
            Verb::Locks => "locks",
            Verb::History => "history",
            Verb::Freeze => "freeze",
            Verb::Unfreeze => "unfreeze",
            Verb::Hpa => "hpa",
            Verb::Capacity => "capacity",
            Verb::Help => "help",
        }
    }

    /// Finds a verb by its lower-case name.
    pub fn from_name(name: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|verb| verb.name() == name)
    }

    /// One-line syntax: `<x>` is required, `[x]` optional, `…` the rest of
    /// the line.
    pub fn usage(self) -> &'static str {
        match self {
            Verb::Scale => "scale <service> <n|+k|-k>",
            Verb::Status => "status [service]",
            Verb::Approve => "approve [id]",
            Verb::Reject => "reject [id] [reason…]",
            Verb::Cancel => "cancel [id]",
            Verb::Locks => "locks",
            Verb::History => "history [service]",
            Verb::Freeze => "freeze <reason…>",
            Verb::Unfreeze => "unfreeze",
            Verb::Hpa => "hpa <service> min|max <n>",
            Verb::Capacity => "capacity",
            Verb::Help => "help [command]",
        }
    }

    /// Describes the command in one line.
    fn summary(self) -> &'static str {
        match self {
            Verb::Scale => "request a new replica count; replies with an impact preview to approve",
            Verb::Status => "show replicas, readiness and HPA of one service or all",
            Verb::Approve => "approve a pending request",
            Verb::Reject => "reject a pending request, with an optional reason",
            Verb::Cancel => "withdraw your own pending request",
            Verb::Locks => "show operation locks, queued operations and pending requests",
            Verb::History => "show recent requests and changes, of one service or all",
            Verb::Freeze => "stop all changes until unfrozen; requests then need an admin",
            Verb::Unfreeze => "lift a freeze",
            Verb::Hpa => {
                "request a new minReplicas or maxReplicas for a service's HPA; replies with an impact preview to approve"
            }
            Verb::Capacity => "show the capacity table: safe and recommended ranges per service",
            Verb::Help => "show the commands, or the details of one",
        }
    }

    /// Details beyond the summary, for `help <verb>`.
    fn details(self) -> String {
        match self {
            Verb::Scale => format!(
                "`n` sets the count (0 to {MAX_REPLICAS}, digits only); `+k` and `-k` change the live count by k. \
                 Any dash a chat client inserts (– — −) counts as `-`, so `scale synapse –1` lowers synapse by one. \
                 Examples: `scale synapse 4`, `scale nexus +2`, `scale plato -1`."
            ),
            Verb::Status | Verb::History => {
                "Service names and aliases are case-insensitive. Example: `status synapse`.".to_string()
            }
            Verb::Approve | Verb::Cancel => {
                "The id is the six-character code shown in the preview, e.g. `approve k7m2qx`; a leading `#` is accepted. \
                 Without an id, the command applies to the only pending request in this channel."
                    .to_string()
            }
            Verb::Reject => {
                "A first word of six letters and digits, or one starting with `#`, is read as the id; the rest is the reason. \
                 Quote a reason that starts with such a word: `reject \"denied by change board\"`."
                    .to_string()
            }
            Verb::Freeze => "Example: `freeze incident INC-1234, fix root cause first`.".to_string(),
            Verb::Hpa => format!(
                "Sets one bound to an absolute value (1 to {MAX_REPLICAS}). Use it when a scale target lies outside the HPA's range, \
                 which the HPA would revert. Example: `hpa synapse min 4`."
            ),
            Verb::Locks | Verb::Unfreeze | Verb::Capacity => String::new(),
            Verb::Help => "Example: `help scale`.".to_string(),
        }
    }
}

/// Help text: every verb with its usage and summary, or the usage, summary
/// and details of one verb. A leading `/` or `!` on the verb and its case
/// are ignored; an unknown verb gets the overview.
pub fn help(verb: Option<&str>) -> String {
    let found = verb.and_then(|name| {
        let name = name.trim().trim_start_matches(['/', '!']).to_lowercase();
        Verb::from_name(&name)
    });
    match found {
        Some(verb) => verb_help(verb),
        None => overview(),
    }
}

fn verb_help(verb: Verb) -> String {
    let mut text = format!("`{}`: {}.", verb.usage(), verb.summary());
    let details = verb.details();
    if !details.is_empty() {
        text.push('\n');
        text.push_str(&details);
    }
    text
}

fn overview() -> String {
    let mut text = String::from("Commands (a leading / or ! is optional):");
    for verb in Verb::ALL {
        let _ = write!(text, "\n`{}`: {}", verb.usage(), verb.summary());
    }
    text
}
