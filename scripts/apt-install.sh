#!/usr/bin/env bash
# Installs Debian packages the tests and benchmarks need beyond Cargo, as `PACKAGE[:COMMAND]`:
# skipped when COMMAND (default: the package name) is already on PATH or is an existing path.
# Package services are not started (a policy-rc.d refuses them during the install): the tests and
# the runner start their own brokers on free loopback ports, and a system RabbitMQ or NATS server
# would only take memory and CPU from the measurements.
set -euo pipefail
need=()
for spec in "$@"; do
  pkg=${spec%%:*}
  cmd=${spec#*:}
  [ "$cmd" = "$spec" ] && cmd=$pkg
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null && continue; fi
  need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing ${need[*]} (apt-get)" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  made_policy=1
fi
cleanup() { [ -n "$made_policy" ] && $sudo rm -f "$policy"; return 0; }
trap cleanup EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
