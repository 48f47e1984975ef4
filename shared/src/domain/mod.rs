//! Decisions as pure functions over plain types. Nothing here knows the AWS SDK.

pub mod alarm_event;
pub mod deploy;
pub mod ecs_event;
pub mod image;
pub mod incident;
pub mod offhours;
pub mod policy;
pub mod pricing;
pub mod reconcile;
pub mod routing;
pub mod safety;
pub mod scan;
pub mod schedule;
pub mod service;
pub mod severity;
pub mod task_start;
pub mod uptime;
pub mod wake;
pub mod watch;
