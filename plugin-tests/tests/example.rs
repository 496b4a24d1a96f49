//! The Rust example connector (`plugins/example/`) passes the example suite.

plugin_tests::example_suite!(plugin_tests::rust_plugin("example"));
