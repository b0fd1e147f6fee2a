#!/usr/bin/env bash
# Set up vpnlab on Debian 12 (as root) and run the demo or the tests.
#   bash scripts/setup.sh demo   # install what is missing, bring up the default lab, show it
#   bash scripts/setup.sh test   # install what is missing, run unit tests and scenarios
# Every step is idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-pip
  iproute2 nftables iputils-ping tcpdump iperf3 procps util-linux
  strongswan-charon strongswan-swanctl libstrongswan-standard-plugins
  libstrongswan-extra-plugins libcharon-extra-plugins
  frr
)

install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

install_python() {
  # Debian's python3, not whatever python3 is first on PATH: the same on every machine.
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
  local stamp=.venv/.vpnlab-installed want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing vpnlab and its Python dependencies into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    echo "$want" >"$stamp"
  fi
}

[ "$(id -u)" = 0 ] || { echo "setup: run as root (labs create network namespaces)" >&2; exit 1; }
install_packages
install_python
export PATH="$PWD/.venv/bin:$PATH"

case "${1:-demo}" in
  demo)
    topology=topologies/tray-bgp-ikev2.yaml
    vpnlab down tray-bgp-v2 >/dev/null 2>&1 || true
    vpnlab up "$topology"
    echo
    echo "== customer LAN host pc -> provider VPC host app, through the tunnels"
    vpnlab exec -l tray-bgp-v2 pc -- ping -c 3 -i 0.2 10.10.0.100
    echo
    vpnlab status -l tray-bgp-v2
    echo
    echo "The lab is still up. Try: swanctl --list-sas --uri unix:///var/lib/vpnlab/tray-bgp-v2/cgw/charon.vici"
    echo "and .venv/bin/vpnlab down tray-bgp-v2 to remove it."
    ;;
  test)
    shift || true
    exec pytest -q "$@"
    ;;
  *)
    echo "usage: $0 demo|test [pytest args]" >&2
    exit 2
    ;;
esac
