//! The health engine: turns what runs say of assets into health.
//!
//! It owns evaluating a check's rules (freshness, completeness, errors, volume,
//! native status, failed and stale runs) into a [`Status`] with [`Reason`]s,
//! per-asset rule overrides by glob, hysteresis (failure and success
//! thresholds), mute, maintenance windows and dependency suppression (the
//! marks on a change that say why it announces nothing of its own), and the
//! roll-up asset -> system -> flow -> tenant.
//!
//! It must not touch storage, scheduling or plugins: it takes plain values in
//! (rules, [`AssetFacts`], the previous [`HealthState`], `now`) and gives plain
//! values out (an [`Evaluation`], the next [`HealthState`], a [`Change`] worth a
//! health event), with no I/O, no async and no clock of its own, so the store and
//! the scheduler can call it inside the transaction that writes a run.
//!
//! One asset, one run:
//! 1. [`evaluate`] (plus [`stale`] when a check has not succeeded lately, or
//!    [`overdue`] when a push check missed its heartbeat) gives an
//!    [`Evaluation`];
//! 2. [`apply`] folds it into the asset's [`HealthState`] and returns a
//!    [`Change`] only when the effective status changes;
//! 3. [`roll_up`] gives each parent the worst of its children, and [`apply`]
//!    (with default [`Thresholds`]) turns that into the parent's changes.

mod book;
mod evaluate;
mod maintenance;
mod model;
mod parse;
mod rollup;
mod rules;
mod state;

pub use book::{
    Book, CheckPlace, Coverage, Deadlines, EntityHealth, Expect, FlowPlace, Outcome, Topology,
};
pub use evaluate::{
    AssetFacts, Evaluation, FailureClass, Heartbeat, NativeLevel, RunOutcome, evaluate,
    evaluate_asset, overdue, stale,
};
pub use maintenance::{Recurring, Scope, When, Window, parse_zone};
pub use model::{EntityRef, Reason, RuleKind, Status};
pub use parse::{
    HumanDuration, ParseError, Threshold, format_duration, glob_match, parse_duration,
    parse_threshold,
};
pub use rollup::{MAX_CHILD_REASONS, roll_up};
pub use rules::{
    AssetRules, CompletenessRule, ErrorsRule, FreshnessRule, NativeStatusRule, Override,
    RuleOverride, Rules, Thresholds, VolumeRule, VolumeWindow,
};
pub use state::{Change, HealthState, Mute, apply};
