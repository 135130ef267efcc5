//! The behaviour both stores must show. Each public function is one test case
//! over a [`Harness`](super::testing::Harness), and
//! `commands/tests/coordination.rs` runs every case against the memory store
//! and against a fresh `redis-server`. The cases use real time and short TTLs,
//! so the same code exercises both stores.

mod locks;
mod pending;
mod queue;
mod records;

use std::time::Duration;

pub use locks::*;
pub use pending::*;
pub use queue::*;
pub use records::*;

/// Lock and request lifetime for cases that do not test expiry.
const LONG_TTL: Duration = Duration::from_secs(30);

/// Maximum time a case waits for something that should happen within a few
/// poll intervals or heartbeat TTLs.
const EVENTUALLY: Duration = Duration::from_secs(10);
