//! # The dbt connector

#![cfg(target_arch = "wasm32")]
