//! The command language shared by every adapter: chat text in, a
//! [`Command`] or a [`UsageError`] with the verb's usage line out.
//!
//! The text is normalised first (see [`normalize()`]), then split on spaces.
//! A leading `/` or `!` is optional, and verbs are case-insensitive.
//! Service names are kept as typed, because resolving them needs the
//! catalog.

mod count;
mod help;
mod normalize;

use std::fmt;

use thiserror::Error;

pub use count::CountProblem;
pub use help::{Verb, help};
pub use normalize::normalize;

use crate::catalog::edit_distance;
use crate::coordination::{REQUEST_ID_ALPHABET, REQUEST_ID_LEN};

/// Maximum length of a `freeze` or `reject` reason, in characters. The
/// reason is repeated in status replies, and 500 characters leave most of a
/// Slack section (3000 characters) or a Discord message (2000) for the rest.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Scale {
        service: String,
        change: ReplicaChange,
    },
    Status {
        service: Option<String>,
    },
    Approve {
        id: Option<String>,
    },
    Reject {
        id: Option<String>,
        reason: Option<String>,
    },
    Cancel {
        id: Option<String>,
    },
    Locks,
    History {
        service: Option<String>,
    },
    Freeze {
        reason: String,
    },
    Unfreeze,
    /// `verb` is the lower-case name of a known verb.
    Help {
        verb: Option<String>,
    },
    Hpa {
        service: String,
        bound: HpaBound,
        value: u32,
    },
    Capacity,
}

/// A requested replica count: absolute, or relative to the live count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaChange {
    To(u32),
    Up(u32),
    Down(u32),
}

/// Written as typed: `4`, `+1`, `-1`.
impl fmt::Display for ReplicaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaChange::To(n) => write!(f, "{n}"),
            ReplicaChange::Up(k) => write!(f, "+{k}"),
            ReplicaChange::Down(k) => write!(f, "-{k}"),
        }
    }
}

/// Bound of a HorizontalPodAutoscaler that `hpa` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpaBound {
    /// `spec.minReplicas`.
    Min,
    /// `spec.maxReplicas`.
    Max,
}

impl HpaBound {
    pub fn as_str(self) -> &'static str {
        match self {
            HpaBound::Min => "min",
            HpaBound::Max => "max",
        }
    }
}

impl fmt::Display for HpaBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that could not be parsed. Every message ends with the usage
/// line of the verb, or the list of commands when the verb is unknown.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UsageError {
    #[error("empty command. {}", help(None))]
    Empty,
    #[error("unknown command {verb:?}{} {}", did_you_mean(.suggestion), help(None))]
    UnknownVerb {
        verb: String,
        suggestion: Option<&'static str>,
    },
    #[error("no help for {topic:?}{} {}", did_you_mean(.suggestion), help(None))]
    UnknownHelpTopic {
        topic: String,
        suggestion: Option<&'static str>,
    },
    #[error("{} needs {argument}.\nUsage: {}", .verb.name(), .verb.usage())]
    MissingArgument { verb: Verb, argument: &'static str },
    #[error("unexpected {extra:?} after the last argument of {}.\nUsage: {}", .verb.name(), .verb.usage())]
    UnexpectedArgument { verb: Verb, extra: String },
    #[error("{value:?} is not a service name: write the service first, e.g. {example}.\nUsage: {}", .verb.usage())]
    ServiceExpected {
        verb: Verb,
        value: String,
        example: String,
    },
    #[error("{value:?} is not a replica count: {problem}. Use digits 0-9, e.g. {example}.\nUsage: {}", .verb.usage())]
    InvalidCount {
        verb: Verb,
        value: String,
        problem: CountProblem,
        example: String,
    },
    #[error("{value:?} is not an HPA bound: write min or max, e.g. hpa {service} max 8.\nUsage: {}", Verb::Hpa.usage())]
    InvalidHpaBound { service: String, value: String },
    #[error(
        "{value:?} is not a request id: expected the {REQUEST_ID_LEN}-character id from the preview, made of letters and the digits 2-9, e.g. {} k7m2qx.\nUsage: {}",
        .verb.name(),
        .verb.usage()
    )]
    InvalidRequestId { verb: Verb, value: String },
    #[error("the reason has {length} characters; keep it to {MAX_REASON_CHARS}.\nUsage: {}", .verb.usage())]
    ReasonTooLong { verb: Verb, length: usize },
}

/// Ends the sentence that names an unknown verb.
fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(verb) => format!("; did you mean {verb}?"),
        None => ".".to_string(),
    }
}

/// Parses one chat line into a command.
pub fn parse(text: &str) -> Result<Command, UsageError> {
    let normalized = normalize(text);
    let body = normalized
        .strip_prefix(['/', '!'])
        .unwrap_or(&normalized)
        .trim_start();
    let mut words = body.split(' ').filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return Err(UsageError::Empty);
    };
    let name = first.to_lowercase();
    let Some(verb) = Verb::from_name(&name) else {
        return Err(UsageError::UnknownVerb {
            verb: first.to_string(),
            suggestion: closest_verb(&name),
        });
    };
    let args: Vec<&str> = words.collect();
    match verb {
        Verb::Scale => parse_scale(&args),
        Verb::Status => Ok(Command::Status {
            service: optional_one(verb, &args)?.map(str::to_string),
        }),
        Verb::History => Ok(Command::History {
            service: optional_one(verb, &args)?.map(str::to_string),
        }),
        Verb::Approve => Ok(Command::Approve {
            id: optional_one(verb, &args)?
                .map(|id| request_id(verb, id))
                .transpose()?,
        }),
        Verb::Cancel => Ok(Command::Cancel {
            id: optional_one(verb, &args)?
                .map(|id| request_id(verb, id))
                .transpose()?,
        }),
        Verb::Reject => parse_reject(&args),
        Verb::Locks => no_arguments(verb, &args).map(|()| Command::Locks),
        Verb::Unfreeze => no_arguments(verb, &args).map(|()| Command::Unfreeze),
        Verb::Capacity => no_arguments(verb, &args).map(|()| Command::Capacity),
        Verb::Freeze => match reason(verb, &args)? {
            Some(reason) => Ok(Command::Freeze { reason }),
            None => Err(UsageError::MissingArgument {
                verb,
                argument: "a reason",
            }),
        },
        Verb::Help => parse_help(&args),
        Verb::Hpa => parse_hpa(&args),
    }
}

fn parse_scale(args: &[&str]) -> Result<Command, UsageError> {
    let verb = Verb::Scale;
    let service = service_argument(verb, args)?;
    let Some(&value) = args.get(1) else {
        return Err(UsageError::MissingArgument {
            verb,
            argument: "a replica count (n, +k or -k)",
        });
    };
    let change = count::parse_change(value).map_err(|problem| UsageError::InvalidCount {
        verb,
        value: value.to_string(),
        problem,
        example: format!("scale {service} 4 (or +1 / -1 to change by one)"),
    })?;
    no_arguments(verb, &args[2..])?;
    Ok(Command::Scale {
        service: service.to_string(),
        change,
    })
}

fn parse_hpa(args: &[&str]) -> Result<Command, UsageError> {
    let verb = Verb::Hpa;
    let service = service_argument(verb, args)?;
    let Some(&bound) = args.get(1) else {
        return Err(UsageError::MissingArgument {
            verb,
            argument: "the bound to set (min or max)",
        });
    };
    let bound = match bound.to_lowercase().as_str() {
        "min" => HpaBound::Min,
        "max" => HpaBound::Max,
        _ => {
            return Err(UsageError::InvalidHpaBound {
                service: service.to_string(),
                value: bound.to_string(),
            });
        }
    };
    let Some(&value) = args.get(2) else {
        return Err(UsageError::MissingArgument {
            verb,
            argument: "the new value of the bound",
        });
    };
    let value = count::parse_absolute(value).map_err(|problem| UsageError::InvalidCount {
        verb,
        value: value.to_string(),
        problem,
        example: format!("hpa {service} {bound} 6"),
    })?;
    no_arguments(verb, &args[3..])?;
    Ok(Command::Hpa {
        service: service.to_string(),
        bound,
        value,
    })
}

/// Reads `reject [id] [reason…]`. The first word is taken as an id when it
/// starts with `#`, has the form of a generated id, or has the id's length
/// and contains a digit. So an id with a typo is rejected, instead of
/// becoming the reason of a decision on another request. Otherwise all
/// words are the reason.
fn parse_reject(args: &[&str]) -> Result<Command, UsageError> {
    let verb = Verb::Reject;
    let looks_like_id = |word: &str| {
        word.starts_with('#')
            || is_request_id(&word.to_lowercase())
            || (word.len() == REQUEST_ID_LEN
                && word.bytes().all(|b| b.is_ascii_alphanumeric())
                && word.bytes().any(|b| b.is_ascii_digit()))
    };
    let (id, rest) = match args.first() {
        Some(first) if looks_like_id(first) => (Some(request_id(verb, first)?), &args[1..]),
        _ => (None, args),
    };
    Ok(Command::Reject {
        id,
        reason: reason(verb, rest)?,
    })
}

fn parse_help(args: &[&str]) -> Result<Command, UsageError> {
    let Some(topic) = optional_one(Verb::Help, args)? else {
        return Ok(Command::Help { verb: None });
    };
    let name = topic.trim_start_matches(['/', '!']).to_lowercase();
    match Verb::from_name(&name) {
        Some(verb) => Ok(Command::Help {
            verb: Some(verb.name().to_string()),
        }),
        None => Err(UsageError::UnknownHelpTopic {
            topic: topic.to_string(),
            suggestion: closest_verb(&name),
        }),
    }
}

/// Returns the first argument as a service name. A number there means the
/// arguments were swapped (`scale 4 synapse`).
fn service_argument<'a>(verb: Verb, args: &[&'a str]) -> Result<&'a str, UsageError> {
    let Some(&service) = args.first() else {
        return Err(UsageError::MissingArgument {
            verb,
            argument: "a service",
        });
    };
    let looks_like_count = service
        .trim_start_matches(['+', '-'])
        .bytes()
        .all(|b| b.is_ascii_digit());
    if looks_like_count {
        let named = args.get(1).copied().unwrap_or("synapse");
        let example = match verb {
            Verb::Hpa => format!("hpa {named} max 8"),
            _ => format!("{} {named} {service}", verb.name()),
        };
        return Err(UsageError::ServiceExpected {
            verb,
            value: service.to_string(),
            example,
        });
    }
    Ok(service)
}

fn optional_one<'a>(verb: Verb, args: &[&'a str]) -> Result<Option<&'a str>, UsageError> {
    no_arguments(verb, args.get(1..).unwrap_or_default())?;
    Ok(args.first().copied())
}

fn no_arguments(verb: Verb, args: &[&str]) -> Result<(), UsageError> {
    if args.is_empty() {
        return Ok(());
    }
    Err(UsageError::UnexpectedArgument {
        verb,
        extra: args.join(" "),
    })
}

/// Joins the remaining words into a reason, without one pair of quotes
/// around it. `None` when no words remain.
fn reason(verb: Verb, args: &[&str]) -> Result<Option<String>, UsageError> {
    if args.is_empty() {
        return Ok(None);
    }
    let joined = args.join(" ");
    let unquoted = ['"', '\'']
        .into_iter()
        .find_map(|quote| {
            joined
                .strip_prefix(quote)
                .and_then(|rest| rest.strip_suffix(quote))
        })
        .unwrap_or(&joined)
        .trim();
    if unquoted.is_empty() {
        return Ok(None);
    }
    let length = unquoted.chars().count();
    if length > MAX_REASON_CHARS {
        return Err(UsageError::ReasonTooLong { verb, length });
    }
    Ok(Some(unquoted.to_string()))
}

/// Validates a request id and returns it in lower case, without a leading `#`.
fn request_id(verb: Verb, text: &str) -> Result<String, UsageError> {
    let id = text.strip_prefix('#').unwrap_or(text).to_lowercase();
    if is_request_id(&id) {
        Ok(id)
    } else {
        Err(UsageError::InvalidRequestId {
            verb,
            value: text.to_string(),
        })
    }
}

/// Tells whether `id` has the form the coordination store generates.
fn is_request_id(id: &str) -> bool {
    id.len() == REQUEST_ID_LEN && id.bytes().all(|b| REQUEST_ID_ALPHABET.contains(&b))
}

/// Finds the verb within edit distance 2 of `name`, if exactly one is
/// closest.
fn closest_verb(name: &str) -> Option<&'static str> {
    let mut ranked: Vec<(usize, &'static str)> = Verb::ALL
        .into_iter()
        .map(|verb| (edit_distance(name, verb.name()), verb.name()))
        .filter(|(distance, _)| *distance <= 2)
        .collect();
    ranked.sort();
    match ranked.as_slice() {
        [(best, verb), (second, _), ..] if best < second => Some(verb),
        [(_, verb)] => Some(verb),
        _ => None,
    }
}
