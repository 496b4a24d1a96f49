//! Fakes of the vendor APIs the connectors call, served on 127.0.0.1 by the
//! harness's [`TestServer`](plugin_sdk::harness::TestServer).
//!
//! Each fake follows its vendor's documented wire format
//! (`../shared/reference/` and the OpenAPI specs under `specs/`): auth,
//! status codes, async 202s and polling, pagination, error bodies. It is a
//! plain `Fn(&Recorded) -> Reply` over its own state, so a test starts it
//! on a free port and asserts both what the plugin reported and what it
//! asked, and the demo's `fakes` binary serves the same fakes on fixed ports.
//!
//! Behaviour is switched at run time by a [`ScenarioSwitch`] shared with the
//! fake; timestamps the fake reports come from a [`FakeClock`], fixed in
//! tests (so observations can be asserted exactly) and the wall clock in the
//! demo.
//!
//! The alert channels' receivers ([`webhook`], [`slack`], [`pagerduty`], and [`smtp`], a
//! real SMTP server) check what the real services check and keep what they
//! took, so tests assert what a person would receive; they play no
//! [`Scenario`]: a test tells them which answer to give. [`stalling`] is
//! the receiver that answers too slowly, never, or too much.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use chrono::{DateTime, Utc};

pub mod dbt_cloud;
pub mod looker;
pub mod pagerduty;
pub mod service;
pub mod slack;
pub mod smtp;
pub mod snowflake;
pub mod stalling;
pub mod webhook;

/// What a fake does, the same seven words for every vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Everything answers, data is fresh and complete.
    Healthy,
    /// Everything answers, but the data was last updated long ago.
    Stale,
    /// The vendor reports failures of its own (a dbt job error, a Looker
    /// trigger error, a service's failed documents).
    Failing,
    /// Answers, but only after a delay long enough to hit a short timeout.
    Slow,
    /// Credentials are refused (401, or the vendor's equivalent).
    Unauthorized,
    /// Every request gets 429 with `Retry-After`.
    RateLimited,
    /// 200 with a body that is not what the wire format promises.
    Malformed,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Healthy,
        Scenario::Stale,
        Scenario::Failing,
        Scenario::Slow,
        Scenario::Unauthorized,
        Scenario::RateLimited,
        Scenario::Malformed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::Stale => "stale",
            Scenario::Failing => "failing",
            Scenario::Slow => "slow",
            Scenario::Unauthorized => "unauthorized",
            Scenario::RateLimited => "rate-limited",
            Scenario::Malformed => "malformed",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|scenario| scenario.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scenario {s:?}; one of {}", names.join(", "))
            })
    }
}

/// The scenario a fake plays now; cheap to clone, shared between the fake
/// and whoever switches it (a test, the demo's cycle).
#[derive(Debug, Clone)]
pub struct ScenarioSwitch(Arc<AtomicU8>);

impl ScenarioSwitch {
    pub fn new(scenario: Scenario) -> Self {
        Self(Arc::new(AtomicU8::new(Self::index(scenario))))
    }

    pub fn get(&self) -> Scenario {
        Scenario::ALL[usize::from(self.0.load(Ordering::Relaxed))]
    }

    pub fn set(&self, scenario: Scenario) {
        self.0.store(Self::index(scenario), Ordering::Relaxed);
    }

    fn index(scenario: Scenario) -> u8 {
        Scenario::ALL
            .iter()
            .position(|s| *s == scenario)
            .expect("every scenario is in ALL") as u8
    }
}

impl Default for ScenarioSwitch {
    fn default() -> Self {
        Self::new(Scenario::Healthy)
    }
}

/// The time a fake believes it is.
#[derive(Clone)]
pub struct FakeClock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl FakeClock {
    /// Always `at`: tests assert exact timestamps against it.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self(Arc::new(move || at))
    }

    /// Always `unix` seconds since the epoch.
    pub fn fixed_unix(unix: i64) -> Self {
        Self::fixed(DateTime::from_timestamp(unix, 0).expect("a valid Unix time"))
    }

    /// The wall clock: the demo.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FakeClock({})", self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip_and_unknown_names_list_the_choices() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.name().parse::<Scenario>(), Ok(scenario));
        }
        let err = "broken".parse::<Scenario>().unwrap_err();
        assert!(err.contains("rate-limited"), "{err}");
    }

    #[test]
    fn a_switch_is_shared_by_its_clones() {
        let switch = ScenarioSwitch::default();
        let other = switch.clone();
        other.set(Scenario::Slow);
        assert_eq!(switch.get(), Scenario::Slow);
    }
}
