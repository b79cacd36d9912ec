# Shared set-up for scripts/run and scripts/test. Every step is idempotent and quick when its
# result is already there.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Builds are reused across clones and CI runs: wasmtime alone takes many minutes from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pushrail-target}"
VENV="${PUSHRAIL_VENV:-/var/tmp/pushrail-venv}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    log "installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
}

# Builds every plugin crate to a component and copies it to plugins/dist/.
build_plugins() {
  ensure_wasm_target
  log "building plugins"
  local packages=()
  for manifest in "$ROOT"/plugins/*/Cargo.toml; do
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)")
  done
  (cd "$ROOT" && cargo build --quiet --profile plugin --target wasm32-wasip2 "${packages[@]}")
  mkdir -p "$ROOT/plugins/dist"
  for manifest in "$ROOT"/plugins/*/Cargo.toml; do
    local name
    name="$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)"
    local file="${name//-/_}.wasm"
    local type="${name#pushrail-plugin-}"
    cp "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/$file" "$ROOT/plugins/dist/$type.wasm"
  done
}

# Plugins only the test suite loads (misbehaving on purpose) and the SDK's template, which must
# build as-is; they go to plugins/test-dist/, never to plugins/dist/.
build_test_plugins() {
  ensure_wasm_target
  log "building test plugins"
  (cd "$ROOT" && cargo build --quiet --profile plugin --target wasm32-wasip2 -p pushrail-test-hostile -p pushrail-test-legacy -p my-destination)
  mkdir -p "$ROOT/plugins/test-dist"
  cp "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/pushrail_test_hostile.wasm" "$ROOT/plugins/test-dist/hostile.wasm"
  # Built against pushrail:destination@0.1.0: the host must keep loading such plugins.
  cp "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/pushrail_test_legacy.wasm" "$ROOT/plugins/test-dist/legacy.wasm"
  cp "$CARGO_TARGET_DIR/wasm32-wasip2/plugin/my_destination.wasm" "$ROOT/plugins/test-dist/template.wasm"
}

# npm dependencies of embed-react/ (the package and the demo dashboard). `npm ci` wipes
# node_modules, so it only runs when the lockfile differs from the one last installed.
ensure_embed_deps() {
  local stamp="$ROOT/embed-react/node_modules/.pushrail-lock.sha256"
  local want
  want="$(sha256sum "$ROOT/embed-react/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci (embed-react)"
    (cd "$ROOT/embed-react" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
}

build_host() {
  log "building the host"
  (cd "$ROOT" && cargo build --quiet -p pushrail)
  PUSHRAIL_BIN="$CARGO_TARGET_DIR/debug/pushrail"
}

ensure_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the Python venv for test peers at $VENV"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the requirements changed since the last install into this venv.
  local stamp="$VENV/.pushrail-requirements"
  if ! cmp -s "$ROOT/scripts/requirements-test.txt" "$stamp"; then
    log "installing Python test dependencies"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements-test.txt"
    cp "$ROOT/scripts/requirements-test.txt" "$stamp"
  fi
  export PUSHRAIL_TEST_PYTHON="$VENV/bin/python"
}

# tansu, the Kafka-compatible broker the kafka tests start (on a loopback port, in-memory storage).
# crates.io has no binary: the first install compiles it (about 10 minutes on 2 cores); the binary
# is kept under /var/tmp so later runs and clones reuse it.
TANSU_ROOT="${PUSHRAIL_TANSU_ROOT:-/var/tmp/pushrail-tools/tansu}"
TANSU_VERSION="0.6.0"

ensure_tansu() {
  if [ ! -x "$TANSU_ROOT/bin/tansu" ]; then
    log "installing tansu $TANSU_VERSION into $TANSU_ROOT (about 10 minutes the first time)"
    # Its own temporary target dir: the shared one would hold cargo's build lock for the whole
    # install. `dynostore` provides the `memory://` storage engine the tests use.
    env -u CARGO_TARGET_DIR cargo install --quiet tansu --version "$TANSU_VERSION" \
      --features dynostore --root "$TANSU_ROOT"
  fi
  export PUSHRAIL_TANSU="$TANSU_ROOT/bin/tansu"
}

# Azurite, the Azure Storage emulator the azure_blob tests start (blob service only, on a loopback
# port, a temporary data directory). npm install takes about 30 s the first time; the install is
# kept under /var/tmp so later runs and clones reuse it.
AZURITE_ROOT="${PUSHRAIL_AZURITE_ROOT:-/var/tmp/pushrail-tools/azurite}"
AZURITE_VERSION="3.37.0"

ensure_azurite() {
  local bin="$AZURITE_ROOT/node_modules/.bin/azurite-blob"
  local installed="$AZURITE_ROOT/node_modules/azurite/package.json"
  if [ ! -x "$bin" ] || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$installed" 2>/dev/null; then
    log "installing Azurite $AZURITE_VERSION into $AZURITE_ROOT"
    mkdir -p "$AZURITE_ROOT"
    npm install --prefix "$AZURITE_ROOT" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
  fi
  export PUSHRAIL_AZURITE="$bin"
}
