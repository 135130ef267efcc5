//! Chat platform adapters: they turn platform events into engine requests
//! and engine replies into platform messages. Only the console exists so far.

pub mod console;
