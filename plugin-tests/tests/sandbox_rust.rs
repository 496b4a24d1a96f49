//! The sandbox suite (`plugin_tests::hostile`) with the Rust hostile plugin
//! (`plugins/testing/hostile/`): a panic, an endless loop or allocation, a
//! request to a host the check does not grant and a huge report each fail
//! their own run with the same reasons as in Python and JavaScript.

plugin_tests::hostile_suite!(plugin_tests::rust_plugin("hostile"));
