#!/usr/bin/env bash
# The demo in one command: builds the plugins, the daemon and the fake
# services (tests/src/bin/fakes/), starts the fakes in the background and runs
# the daemon on config/demo.toml with its SQLite file in data/. Ctrl-C stops
# both. Arguments go to the fakes, e.g. `--phase 20` for a faster cycle.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-plugins.sh
cargo build --release -p tributary -p tributary-tests --bin tributary --bin fakes
target/release/fakes "$@" &
fakes=$!
trap 'kill "$fakes" 2>/dev/null || true' EXIT
# The daemon's first runs should find the fakes (and the dbt artifacts they write).
for _ in $(seq 1 50); do
    [[ -f data/demo-dbt/run_results.json ]] && (echo >/dev/tcp/127.0.0.1/9412) 2>/dev/null && break
    kill -0 "$fakes" 2>/dev/null || { echo "the fakes did not start" >&2; exit 1; }
    sleep 0.2
done
echo "GraphiQL: http://127.0.0.1:8080/graphql  (header {\"Authorization\": \"Bearer demo-admin-token\"})" >&2
target/release/tributary serve --config config/demo.toml
