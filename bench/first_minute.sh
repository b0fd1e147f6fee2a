#!/usr/bin/env bash
# The first minute, N times over: 'bash scripts/setup.sh demo' from nothing, and is every
# ping of it answered? Prints one line per run and "M/N runs: every ping answered".
#   bash bench/first_minute.sh [N]          on this machine's data plane
#   bash scripts/guest.sh bash bench/first_minute.sh 10   on a stock kernel (ESP)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10} good=0
for ((i = 1; i <= runs; i++)); do
  start=$(date +%s%N)
  out=$(bash scripts/setup.sh demo 2>&1)
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  plane=$(grep -o 'data plane [a-z]*' <<<"$out" | head -1)
  pings=$(grep -o '[0-9]* packets transmitted, [0-9]* received' <<<"$out" | head -1)
  if [ "$rc" = 0 ] && grep -q '3 packets transmitted, 3 received' <<<"$out"; then
    good=$((good + 1)) verdict=ok
  else
    verdict=FAILED
    printf '%s\n' "$out" | tail -n 30
  fi
  printf 'run %d: %s, exit %d, %s, %s, %d ms\n' "$i" "$verdict" "$rc" "$plane" "$pings" "$ms"
  .venv/bin/vpnlab down tray-bgp-v2 >/dev/null 2>&1 || true
done
echo "$good/$runs runs: every ping answered"
[ "$good" = "$runs" ]
