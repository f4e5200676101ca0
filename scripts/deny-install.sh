#!/usr/bin/env bash
# Installs cargo-deny, which `.ci/run` uses to check the dependency graph's licences, bans and
# sources against deny.toml. Skipped when `cargo-deny` is already on PATH or in Cargo's bin
# folder ($CARGO_HOME/bin, default ~/.cargo/bin), which is where it goes; a different version
# only gets a warning, as for tansu.
set -euo pipefail
version=0.20.2
bin_dir="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
found=$(command -v cargo-deny || true)
[ -z "$found" ] && [ -x "$bin_dir/cargo-deny" ] && found="$bin_dir/cargo-deny"
if [ -n "$found" ]; then
  have=$("$found" --version 2>/dev/null | awk '{print $NF}' || true)
  if [ -n "$have" ] && [ "$have" != "$version" ]; then
    echo "deny-install.sh: $found is cargo-deny $have; deny.toml is checked with $version (cargo install cargo-deny --version $version --locked --force)" >&2
  fi
  exit 0
fi
echo "installing cargo-deny $version with cargo" >&2
cargo install cargo-deny --version "$version" --locked >&2
