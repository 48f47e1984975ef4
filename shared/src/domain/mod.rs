//! Decisions as pure functions over plain types. Nothing here knows the AWS SDK.

pub mod deploy;
pub mod image;
pub mod policy;
pub mod routing;
pub mod scan;
pub mod severity;
