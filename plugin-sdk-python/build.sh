#!/usr/bin/env bash
# Build a Python connector into a WebAssembly component:
#   plugin-sdk-python/build.sh APP_DIR -o OUT.wasm
# APP_DIR holds app.py (which assigns `Plugin = tributary.export(...)`) and
# any pure-Python modules it imports. Runs the pinned componentize-py
# (requirements.txt) offline. The contract is plugin-sdk/wit/connector.wit,
# copied next to this SDK's world at each build, never forked.
set -euo pipefail
sdk="$(cd "$(dirname "$0")" && pwd)"
usage() { echo "usage: $0 APP_DIR -o OUT.wasm" >&2; exit 2; }
[ $# -eq 3 ] && [ "$2" = "-o" ] || usage
app="$(cd "$1" && pwd)"
out="$3"
[ -f "$app/app.py" ] || { echo "error: $app/app.py not found" >&2; exit 2; }
want="$(sed -n 's/^componentize-py==//p' "$sdk/requirements.txt")"
have="$(componentize-py --version 2>/dev/null | awk '{print $2}')" || true
if [ "$have" != "$want" ]; then
    echo "error: componentize-py $want is required (found: ${have:-none});" \
        "run: python3 -m pip install -r $sdk/requirements.txt" >&2
    exit 2
fi
wit="$(mktemp -d)"
trap 'rm -rf "$wit"' EXIT
cp -r "$sdk/wit/." "$wit/"
cp "$sdk/../plugin-sdk/wit/connector.wit" "$wit/connector.wit"
mkdir -p "$(dirname "$out")"
componentize-py -d "$wit" -w connector-http componentize app -p "$app" -p "$sdk" -o "$out.tmp"
mv "$out.tmp" "$out"
