# Sourced by .ci/serve and .ci/run: installs what is missing (pinned
# versions, registry packages only: apt, crates.io, npm; nothing is
# downloaded from GitHub), and times each phase. Safe to rerun: an install
# that is already there is skipped.

export PATH="$HOME/.cargo/bin:$PWD/.ci/node_modules/.bin:$PATH"
export CARGO_TERM_COLOR=never
# Trunk's update check asks crates.io on every start.
export TRUNK_SKIP_VERSION_CHECK=true
# Build outputs live outside the clone, so a fresh clone reuses them.
export CLIPLENS_CACHE="${CLIPLENS_CACHE:-$HOME/.cache/cliplens}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CLIPLENS_CACHE/target}"
# The wasm builds get their own target dir: nothing is shared with the
# native build anyway (other target, other profile), and a build of each
# can then run at the same time without waiting for the other's lock.
export CLIPLENS_WEB_TARGET="${CLIPLENS_WEB_TARGET:-$CLIPLENS_CACHE/web-target}"
# Mesa's Vulkan loader complains on every start without a runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

PHASES=()
# phase NAME COMMAND...: runs COMMAND and records how long it took.
phase() {
  local name="$1"; shift
  local start=$SECONDS
  "$@"
  local status=$?
  PHASES+=("$(printf '%-28s %4dm%02ds' "$name" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)))")
  return $status
}

print_phases() {
  echo "phase times:"
  for p in "${PHASES[@]}"; do echo "  $p"; done
  printf '  %-28s %4dm%02ds\n' total $((SECONDS / 60)) $((SECONDS % 60))
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: chromium and Mesa's software Vulkan for the tests only.
install_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# `cargo install` for build tools, compiled for a short build rather than the
# fastest binary: Trunk's own profile asks for fat LTO and one codegen unit.
# opt-level 1, no LTO: the tools spend their time in other programs (cargo,
# wasm-opt) or in short passes over the wasm files. (Trunk at opt-level 0
# was not tried: async code that large can overflow its stack unoptimized.)
# Both share one target dir, so common dependencies are compiled once.
install_tool() {
  local opt_level="$1"; shift
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt_level" \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    cargo install --target-dir "$CLIPLENS_CACHE/tools-target" "$@"
}

install_web_tools() {
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
  # No TLS (rustls, ring) and no update check: Trunk only downloads tools it
  # cannot find, and every tool it needs is installed here.
  if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
    install_tool 1 trunk --version 0.21.14 --locked --no-default-features
  fi
  # Must equal Cargo.lock's wasm-bindgen (Trunk takes it from PATH). Its own
  # lock file wants a crate release the registry mirror lacks: no --locked.
  # Only the wasm-bindgen binary, without TLS (its test runner's downloads).
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
    install_tool 1 wasm-bindgen-cli --version 0.2.130 --no-default-features --bin wasm-bindgen
  fi
  # wasm-opt 132 for release builds, from npm (Debian's is too old).
  if [ "$(wasm-opt --version 2>/dev/null)" != "wasm-opt version 132 (version_132)" ]; then
    npm ci --prefix .ci --no-audit --no-fund >/dev/null
  fi
}
