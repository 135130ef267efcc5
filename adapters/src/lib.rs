//! Chat platform adapters: they turn platform events into engine requests
//! and engine replies into platform messages.

pub mod chat;
pub mod console;
pub mod discord;
pub mod secret;
pub mod slack;
