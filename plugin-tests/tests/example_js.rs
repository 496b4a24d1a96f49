//! The JavaScript example connector (`plugin-sdk-js/examples/example/`)
//! passes the example suite, like the Rust one.

plugin_tests::example_suite!(plugin_tests::js_plugin(
    "plugin-sdk-js/examples/example/plugin.js"
));
