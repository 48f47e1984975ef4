//! The common crate of menotime-ops: configuration, the domain decisions (pure),
//! the AWS adapters behind narrow traits, notifications and the runbook.
//!
//! - [`config`]: environment variables of docs/reference.md §2, read once at start-up.
//! - [`domain`]: event normalisation, routing, the CVE policy, release order and the
//!   deploy plan, all pure and exhaustively tested.
//! - [`aws`]: the few SDK calls, turned into domain types and [`Error`]s.
//! - [`notify`] and [`runbook`]: docs/reference.md §4, for all three functions.
//! - [`tags`]: the state kept in resource tags (docs/reference.md §3).
//! - [`lambda`]: what every `main` does around its handler.
//! - `testing` (feature `test-util`): an in-memory AWS and configurations for tests.

pub mod arn;
pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod lambda;
pub mod notify;
pub mod runbook;
pub mod sdk;
pub mod tags;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use error::{Error, Retry};
