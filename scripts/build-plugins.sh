#!/usr/bin/env bash
# Build every plugin in plugins/ as a WebAssembly component (wasm32-wasip2,
# release profile: small and fast, the daemon loads these) and copy them to
#   target/plugins/       connectors (everything outside plugins/testing/)
#   target/test-plugins/  test-only plugins (plugins/testing/*)
# at the repository root. Arguments are passed to `cargo build`, e.g.
#   scripts/build-plugins.sh --locked
#   scripts/build-plugins.sh -p my-connector     (that plugin only)
# Runnable from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
plugins="$root/plugins"
target="wasm32-wasip2"

if ! rustup target list --installed | grep -qx "$target"; then
    echo "installing the $target target" >&2
    rustup target add "$target"
fi

# The plugins workspace's .cargo/config.toml sets the target and the target
# dir (../target/wasm). Run from there so the config applies. Cargo's output
# is shown as it comes and kept, to explain a crate that forgot the export
# macro: plugin-sdk makes its link fail on a symbol only the macro defines.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { (cd "$plugins" && cargo build --release "$@") 2>&1 1>&3 | tee "$log" >&2; } 3>&1; then
    if grep -q 'plugin_sdk_export_connector_missing' "$log"; then
        crate="$(grep -o 'could not compile `[^`]*`' "$log" | head -n 1 | cut -d'`' -f2)"
        echo "error: the plugin crate ${crate:-above} does not export its connector:" >&2
        echo "       add plugin_sdk::export_connector!(YourConnector); to its src/lib.rs" >&2
    fi
    exit 1
fi

# The packages asked for with -p/--package: only those are copied (the
# others were not built by this call).
packages=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        -p | --package) packages+=("${args[i + 1]:-}") ;;
        --package=*) packages+=("${args[i]#--package=}") ;;
        -p?*) packages+=("${args[i]#-p}") ;;
    esac
done
asked() {
    [[ ${#packages[@]} -eq 0 ]] && return 0
    local p
    for p in "${packages[@]}"; do
        [[ "$p" == "$1" ]] && return 0
    done
    return 1
}

# Ask cargo where the artifacts are, rather than assuming: CARGO_TARGET_DIR
# or a user config may move them.
metadata="$(cd "$plugins" && cargo metadata --format-version 1 --no-deps)"
target_dir="$(printf '%s' "$metadata" | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
out="$target_dir/$target/release"

mkdir -p "$root/target/plugins" "$root/target/test-plugins"

# Every cdylib crate under plugins/ is a component; its place tells a
# connector from a test-only plugin.
lines=()
while IFS= read -r manifest; do
    grep -q 'cdylib' "$manifest" || continue
    name="$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)"
    asked "$name" || continue
    wasm="$out/${name//-/_}.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "error: expected $wasm after the build" >&2
        exit 1
    fi
    # A crate that never calls the export macro still builds, into a
    # component the daemon refuses; say so now, and what to add.
    if ! grep -q 'tributary:connector/plugin@' "$wasm"; then
        echo "error: $name ($manifest) does not export tributary:connector/plugin:" >&2
        echo "       add plugin_sdk::export_connector!(YourConnector); to its src/lib.rs" >&2
        exit 1
    fi
    case "$manifest" in
        "$plugins"/testing/*) dest="$root/target/test-plugins" ;;
        *) dest="$root/target/plugins" ;;
    esac
    cp "$wasm" "$dest/"
    lines+=("$(printf '  %-32s %9s bytes' "${dest#"$root"/}/$(basename "$wasm")" "$(wc -c <"$wasm" | tr -d ' ')")")
done < <(find "$plugins" -name Cargo.toml -not -path "$plugins/Cargo.toml" -not -path '*/target/*' | sort)

echo "built ${#lines[@]} plugin component(s) in $root:"
printf '%s\n' "${lines[@]}"
echo "connectors in $root/target/plugins/, test-only plugins in $root/target/test-plugins/"
