//! `menotime-ops`, the operator's CLI: the manual's hand procedures (status, approve,
//! freeze, unfreeze, rollback, off-hours holds) and `plan`, on the same shared adapters
//! and domain decisions as the Lambda functions, so that the CLI and the functions
//! cannot disagree. Reference: docs/reference.md §7.
//!
//! - [`args`]: the command line (clap).
//! - [`commands`]: one module per command; each returns a [`output::Report`].
//! - [`aws`]: the SDK configuration (profiles, SSO, region, endpoint) and the calls only
//!   an operator makes.
//! - [`values`] and [`time`]: the tag values the CLI writes and the times it reads.
//! - [`error`]: one line and an exit status for every failure.

pub mod args;
pub mod aws;
pub mod commands;
pub mod error;
pub mod output;
pub mod time;
pub mod values;
