//! Command-line options of the Kafka tools, parsed as joptsimple does:
//! `--name value` or `--name=value`, and flags without values.

use std::collections::{BTreeMap, BTreeSet};

use crate::programs::ExecOutput;

/// Options that take no value.
const FLAGS: &[&str] = &[
    "all-groups",
    "cancel",
    "describe",
    "exclude-internal",
    "execute",
    "generate",
    "help",
    "list",
    "members",
    "offsets",
    "preserve-throttles",
    "state",
    "under-replicated-partitions",
    "verbose",
    "verify",
    "version",
];

/// Options that take a value.
const VALUED: &[&str] = &[
    "bootstrap-server",
    "broker-list",
    "command-config",
    "group",
    "reassignment-json-file",
    "throttle",
    "timeout",
    "topic",
    "topics-to-move-json-file",
    "replica-alter-log-dirs-throttle",
];

#[derive(Debug, Default)]
pub(super) struct Options {
    flags: BTreeSet<String>,
    values: BTreeMap<String, Vec<String>>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, ExecOutput> {
        let mut options = Options::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(ExecOutput::failure(
                    1,
                    format!("Found non argument parameters: {arg}\n"),
                ));
            };
            let (name, inline) = match name.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (name, None),
            };
            if FLAGS.contains(&name) {
                options.flags.insert(name.to_string());
            } else if VALUED.contains(&name) {
                let Some(value) = inline.or_else(|| iter.next().cloned()) else {
                    return Err(ExecOutput::failure(
                        1,
                        format!("Option {name} requires an argument\n"),
                    ));
                };
                options
                    .values
                    .entry(name.to_string())
                    .or_default()
                    .push(value);
            } else {
                return Err(ExecOutput::failure(
                    1,
                    format!(
                        "Exception in thread \"main\" joptsimple.UnrecognizedOptionException: {name} is not a recognized option\n"
                    ),
                ));
            }
        }
        Ok(options)
    }

    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}
