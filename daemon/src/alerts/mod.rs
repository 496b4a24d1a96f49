//! Alert delivery: health changes turned into messages to webhooks, Slack,
//! PagerDuty and email.
//!
//! It owns what is sent where and when: routes pick the changes, grouping
//! decides when a message is due, the dispatcher delivers it from the
//! outbox the store fills with every health event. It must not judge health: it reads
//! the health events the service commits and never changes them.

pub mod dispatcher;
pub mod email;
pub mod grouping;
pub mod message;
pub mod pagerduty;
pub mod retry_after;
pub mod routes;
pub mod slack;
pub mod webhook;
pub mod wording;
