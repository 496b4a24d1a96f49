//! Alert delivery: health changes turned into messages to webhooks, Slack,
//! PagerDuty and email.
//!
//! It owns what is sent where and when. It must not judge health: it reads
//! the health events the service commits and never changes them.

pub mod email;
pub mod message;
pub mod pagerduty;
pub mod retry_after;
pub mod slack;
pub mod wording;
