#!/usr/bin/env bash
# Installs what the peer receivers of peers/ need and prints nothing but errors on success:
# - node (Debian's nodejs when it is missing; the Node peer has no dependencies, so `npm ci`
#   runs only if peers/node/package.json gains some);
# - a virtualenv with the pinned packages of peers/python/requirements.txt, at
#   $DIDIT_PEERS_VENV (default ~/.cache/didit-webhook-bench/peers-venv), skipped when it
#   already holds them;
# - go (Debian's golang-go when it is missing) and the Go peer, built with the standard library
#   only into peers/go/bin/didit-peer-go (ignored by git); its build cache and GOPATH live in
#   $DIDIT_PEERS_GO (default ~/.cache/didit-webhook-bench/go), and nothing is downloaded;
# - Bun, pinned in peers/bun/package-lock.json: `npm ci` there (npm from Debian when missing)
#   when peers/bun/node_modules is missing or older than the lock file; the binary is then
#   peers/bun/node_modules/.bin/bun.
# Usage: bash scripts/peers-install.sh; the Python peer is then "$DIDIT_PEERS_VENV/bin/python".
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt-install.sh nodejs:node npm golang-go:go
if grep -q '"dependencies"' peers/node/package.json; then
  (cd peers/node && npm ci --silent --no-audit --no-fund >/dev/null)
fi

req=peers/python/requirements.txt
venv="${DIDIT_PEERS_VENV:-${HOME:-/tmp}/.cache/didit-webhook-bench/peers-venv}"
stamp="$venv/.requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null || [ ! -x "$venv/bin/python" ]; then
  rm -rf "$venv"
  # Debian's python3 needs python3-venv for this.
  python3 -m venv "$venv" >/dev/null
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >/dev/null
  cp "$req" "$stamp"
fi

# go build is incremental: a no-op (well under a second) when peers/go has not changed.
gocache="${DIDIT_PEERS_GO:-${HOME:-/tmp}/.cache/didit-webhook-bench/go}"
(cd peers/go && GOCACHE="$gocache/build" GOPATH="$gocache/path" GOPROXY=off GOFLAGS= GOTOOLCHAIN=local \
  go build -trimpath -o bin/didit-peer-go .)

lock=peers/bun/package-lock.json
stamp=peers/bun/node_modules/.package-lock.installed
if ! cmp -s "$lock" "$stamp" 2>/dev/null || [ ! -x peers/bun/node_modules/.bin/bun ]; then
  (cd peers/bun && npm ci --silent --no-audit --no-fund >/dev/null)
  cp "$lock" "$stamp"
fi
