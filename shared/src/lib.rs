//! The common crate of menotime-ops: configuration, the domain decisions (pure),
//! the AWS adapters behind narrow traits, notifications and the runbook.
//!
//! - [`config`]: environment variables of contract §2, read once at start-up.
//! - [`domain`]: event normalisation, routing, the CVE policy, release order and the
//!   deploy plan, all pure and exhaustively tested.
//! - [`aws`]: the few SDK calls, turned into domain types and [`Error`]s.
//! - [`notify`] and [`runbook`]: contract §4, for all three functions.
//! - [`tags`]: the state kept in resource tags (contract §3).
//! - [`lambda`]: what every `main` does around its handler.

// Production code never panics on a missing value: every fallible step returns an
// Error that says what to do (tests may unwrap). Enforced by clippy in CI.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

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

pub use error::{Error, Retry};
