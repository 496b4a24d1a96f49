//! Nothing but tests: `tests/<plugin>.rs` runs one connector plugin through
//! the real plugin host with `plugin_sdk::harness`, without building the daemon.
