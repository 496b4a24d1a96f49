//! # The http connector

#![cfg(target_arch = "wasm32")]
