//! # The snowflake connector

#![cfg(target_arch = "wasm32")]
