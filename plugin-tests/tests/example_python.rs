//! The Python example connector (`plugins-python/example/`, built with
//! `plugin-sdk-python`) passes the same suite as the Rust one.

plugin_tests::example_suite!(plugin_tests::python_plugin("plugins-python/example"));
