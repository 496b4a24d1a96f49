//! The clock seam: everything that asks "what time is it" for business logic asks
//! a [`Clock`], so tests and the plugin test harness can fix time.
//!
//! Deadlines and timeouts use the monotonic clock of the OS directly; they are
//! about how long something took, not about what time the data says it is.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always says the same time: for tests and plugin test runs.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl FixedClock {
    /// A fixed clock at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        Self(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// A clock tests move by hand, shared between the daemon and the test.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<SystemTime>);

impl ManualClock {
    /// A clock at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        Self(std::sync::Mutex::new(
            UNIX_EPOCH + Duration::from_secs(secs),
        ))
    }

    pub fn set(&self, t: SystemTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
