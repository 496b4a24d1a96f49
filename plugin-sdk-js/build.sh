#!/usr/bin/env bash
# Build a JavaScript connector into a WebAssembly component:
#   plugin-sdk-js/build.sh ENTRY.js -o OUT.wasm
# ENTRY.js does `export const plugin = connector({...})` (see docs/plugins-js.md).
# Needs `npm ci --prefix plugin-sdk-js` once (exact versions in package-lock.json;
# nothing is downloaded at build time).
#
# The contract is plugin-sdk/wit/connector.wit, world `connector` — the same
# file the Rust SDK and the host use, so there is one source of truth.
# No `--aot`: weval downloads its binary at run time. `-d fetch-event` drops
# the `wasi:http/incoming-handler` export the default build adds.
set -euo pipefail

usage() { echo "usage: $0 ENTRY.js -o OUT.wasm" >&2; exit 2; }
[ $# -eq 3 ] && [ "$2" = "-o" ] || usage
entry=$1
out=$3
[ -f "$entry" ] || { echo "$0: no such file: $entry" >&2; exit 2; }

sdk_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wit=$sdk_dir/../plugin-sdk/wit
bin=$sdk_dir/node_modules/.bin
[ -x "$bin/componentize-js" ] || { echo "$0: run 'npm ci --prefix $sdk_dir' first" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node "$sdk_dir/bundle.mjs" "$entry" "$work/plugin.js"
"$bin/componentize-js" --wit "$wit" --world-name connector -d fetch-event \
  -o "$out" "$work/plugin.js"
