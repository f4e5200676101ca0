#!/usr/bin/env bash
# Installs the pinned Python HTTP clients of tests/clients/requirements.txt into a virtualenv of
# their own (skipped when it already holds them) and prints that virtualenv's python, for
# DIDIT_CLIENTS_PYTHON. Usage: python=$(bash scripts/clients-install.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/clients/requirements.txt
venv="${DIDIT_CLIENTS_VENV:-${HOME:-/tmp}/.cache/didit-webhook-bench/clients-venv}"
stamp="$venv/.requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "installing the Python clients of $req into $venv (pip)" >&2
  rm -rf "$venv"
  # Debian's python3 needs python3-venv for this; the image's CPython has it.
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
