//! # The looker connector

#![cfg(target_arch = "wasm32")]
