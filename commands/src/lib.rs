//! scalebot's domain: everything between a chat line and a verified change,
//! with no knowledge of Slack, Discord or HTTP servers.
//!
//! Data flow of one request:
//! 1. `grammar` parses the text into a `Command` (or a usage error).
//! 2. `policy` checks who may request it, the freeze state and the ranges of
//!    the `catalog`, which is built from `config`.
//! 3. [`preview`] reads live state through [`cluster`] and builds an `Impact`.
//! 4. `coordination` stores the pending request; approvals are decided
//!    atomically there, and the operation lock serialises execution.
//! 5. [`procedures`] run the runbook steps and report progress.
//! 6. `engine` ties the steps together and `reply` turns errors into text.

pub mod catalog;
pub mod cluster;
pub mod config;
pub mod coordination;
pub mod engine;
pub mod grammar;
pub mod identity;
pub mod policy;
pub mod preview;
pub mod procedures;
pub mod quantity;
pub mod reply;
