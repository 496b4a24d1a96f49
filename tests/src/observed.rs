//! Reading what a plugin reported, for the connector tests: one named
//! metadata value or extra count of an observation, and the parts of a
//! plugin's own classified error.

use std::time::Duration;

use tributary::plugin::{ErrorClass, Observation, RunError};

/// The value of metadata `key`, if the observation has it.
pub fn metadata<'a>(o: &'a Observation, key: &str) -> Option<&'a str> {
    o.metadata
        .iter()
        .find(|m| m.key == key)
        .map(|m| m.value.as_str())
}

/// The extra count `name`, if the observation has it.
pub fn extra(o: &Observation, name: &str) -> Option<u64> {
    o.counts
        .extras
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.value)
}

/// The class, message and retry-after of an error the plugin returned.
///
/// # Panics
/// When the run failed some other way (a trap, a limit, the sandbox): the
/// test expected the plugin's own verdict.
pub fn connector_error(err: &RunError) -> (ErrorClass, &str, Option<Duration>) {
    match err {
        RunError::Connector {
            class,
            message,
            retry_after,
        } => (*class, message.as_str(), *retry_after),
        other => panic!("not the plugin's own error: {other}"),
    }
}
