//! Alert delivery: health changes turned into messages to webhooks, Slack,
//! PagerDuty and email.
//!
//! It owns what is sent where and when. It must not judge health: it reads
//! the health events the service commits and never changes them.

pub mod message;
