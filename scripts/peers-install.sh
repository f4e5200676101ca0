#!/usr/bin/env bash
# Installs what the peer receivers of peers/ need and prints nothing but errors on success:
# - node (Debian's nodejs when it is missing; the Node peer has no dependencies, so `npm ci`
#   runs only if peers/node/package.json gains some);
# - a virtualenv with the pinned packages of peers/python/requirements.txt, at
#   $DIDIT_PEERS_VENV (default ~/.cache/didit-webhook-bench/peers-venv), skipped when it
#   already holds them.
# Usage: bash scripts/peers-install.sh; the Python peer is then "$DIDIT_PEERS_VENV/bin/python".
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt-install.sh nodejs:node
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
