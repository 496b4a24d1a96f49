#!/usr/bin/env bash
# The demo in one command: builds the plugins, the daemon and the fake
# services, starts the fakes in the background and runs the daemon on
# config/demo.toml with its SQLite file in data/. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-plugins.sh
cargo build --release -p tributary -p tributary-tests --bin tributary --bin fakes
target/release/fakes &
fakes=$!
trap 'kill "$fakes" 2>/dev/null || true' EXIT
echo "GraphiQL: http://127.0.0.1:8080/graphql  (header {\"Authorization\": \"Bearer demo-admin-token\"})" >&2
target/release/tributary serve --config config/demo.toml
