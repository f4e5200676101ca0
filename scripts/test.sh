#!/usr/bin/env bash
# The project's test command (README "Set up"): installs what the tests need beyond Cargo, then
# runs every test. Extra arguments go to `cargo test` (e.g. `bash scripts/test.sh --test durability`).
#
# - nats-server (Debian package): tests/durability.rs starts a real JetStream server on a free
#   loopback port and kills it mid-run.
# - prlimit (util-linux): the "disk full" test lowers the receiver's file-size limit.
# - chattr (e2fsprogs): the read-only test sets the store's files immutable (needs root, as the
#   apt-get above does).
# - python3: the CPython oracle for signatures and canonicalisation.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nats-server >/dev/null || need_apt+=(nats-server)
command -v prlimit >/dev/null || need_apt+=(util-linux)
command -v chattr >/dev/null || need_apt+=(e2fsprogs)
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (apt-get)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The Debian package enables a system service on 4222; the tests start their own servers on
# free ports and never use it.

exec cargo test --workspace --all-targets "$@"
