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
  frr graphviz tshark chromium
)

install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    # tshark (vpnlab capture's tests read the decrypted pcaps with it) would otherwise ask
    # whether non-root users may capture: answer no, without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
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

DOCKER_PACKAGES=(docker.io debootstrap)
DOCKERD_LOG=/var/log/vpnlab-dockerd.log

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_docker() {
  # The Docker runtime's node images. Optional: whatever fails here is reported and setup goes
  # on, since the netns runtime needs none of it. dockerd is started here, before pytest, never
  # during it: it changes the host namespace (ip_forward=1, FORWARD policy DROP, docker0,
  # MASQUERADE), which the scenario suite's guard compares before and after. VPNLAB_DOCKER=0 skips.
  [ "${VPNLAB_DOCKER:-1}" = 0 ] && { echo "setup: VPNLAB_DOCKER=0: no Docker"; return 0; }
  local missing=() p i
  for p in "${DOCKER_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]} (Docker runtime)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
             --no-install-recommends "${missing[@]}" >/dev/null; }; then
      echo "setup: could not install ${missing[*]}: no Docker runtime (netns is unaffected)" >&2
      return 0
    fi
  fi
  if ! docker_answers; then
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
      echo "setup: no dockerd or docker client: no Docker runtime (netns is unaffected)" >&2
      return 0
    fi
    # No systemd here: start the daemon by hand, detached, and wait for it (bounded).
    echo "setup: starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 &
    for ((i = 0; i < 60; i++)); do docker_answers && break; sleep 0.5; done
    if ! docker_answers; then
      echo "setup: dockerd did not answer within 30 s (see $DOCKERD_LOG): no Docker runtime" >&2
      return 0
    fi
  fi
  # Fast when the images exist: their tags are derived from their inputs.
  vpnlab image build --release all ||
    echo "setup: building the node images failed (above); Docker tests will say so" >&2
}

GUEST_PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static)
GUEST_OUT=.guest-results   # the guest's output, exit status and JUnit file, kept for reading
HOST_OUT=.test-results     # the host runs' JUnit files

host_has_esp() {
  # The data plane's own probe (a throw-away SA, lab.daemons.dataplane.PROBE) in a
  # throw-away namespace: the kernel has ESP or says "type not found".
  python -c 'import subprocess, sys; from lab.daemons.dataplane import PROBE
sys.exit(subprocess.run(["unshare", "-n", *PROBE], capture_output=True).returncode)'
}

kernel_dataplane() {
  # The scenarios marked 'kernel', again on the kernel data plane: here when this kernel has
  # ESP, else in a QEMU guest booting Debian's stock kernel (scripts/guest.sh). Its failure,
  # or a guest that does not boot, fails the run. VPNLAB_KERNEL_DATAPLANE=0 leaves it out,
  # saying so.
  local args=(-q -m kernel --dataplane kernel --runtimes netns) missing=() p
  if [ "${VPNLAB_KERNEL_DATAPLANE:-1}" = 0 ]; then
    echo "setup: VPNLAB_KERNEL_DATAPLANE=0: the kernel data plane is NOT tested in this run"
    return 0
  fi
  # Collected first, then searched: with pipefail, 'grep -q' closing the pipe early would
  # fail pytest with SIGPIPE and hide every marked scenario.
  local collected
  collected=$(pytest -q --collect-only -m kernel "$@" 2>/dev/null || true)
  if ! grep -q "::" <<<"$collected"; then
    echo "setup: no scenario marked 'kernel' among those selected: no kernel data plane run"
    return 0
  fi
  if host_has_esp; then
    echo "setup: this kernel has ESP: the kernel data plane scenarios run here"
    pytest "${args[@]}" "$@"
    return
  fi
  for p in "${GUEST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]} (a stock-kernel guest for the kernel data plane)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  echo "setup: this kernel has no ESP: the kernel data plane scenarios run in a guest"
  rm -rf "$GUEST_OUT"
  # One lab at a time, with room to converge: the guest is emulated, about 15x slower.
  VPNLAB_GUEST_OUT=$GUEST_OUT bash scripts/guest.sh pytest "${args[@]}" -p no:cacheprovider \
    --lab-timeout 120 --durations=15 --junitxml="$PWD/$GUEST_OUT/junit.xml" "$@"
}

[ "$(id -u)" = 0 ] || { echo "setup: run as root (labs create network namespaces)" >&2; exit 1; }
install_packages
install_python
export PATH="$PWD/.venv/bin:$PATH"

case "${1:-demo}" in
  demo)
    topology=topologies/tray-bgp-ikev2.yaml
    vpnlab down tray-bgp-v2 >/dev/null 2>&1 || true
    vpnlab up "$topology" --runtime netns   # the path that works on any Debian 12 box
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
    ensure_docker
    # Labs run side by side, one pytest-xdist worker each: most of a scenario is waiting on
    # protocol timers. The few tests that run 'vpnlab destroy --all' (it removes every lab
    # on the machine) run first, on their own. The host namespace is compared with one
    # snapshot taken before both runs.
    VPNLAB_HOST_BASELINE=$(mktemp /tmp/vpnlab-host-baseline.XXXXXX)
    export VPNLAB_HOST_BASELINE
    trap 'rm -f "$VPNLAB_HOST_BASELINE"' EXIT
    # The host runs ask for the userspace data plane, which every machine can run: the
    # same tests then mean the same thing on a laptop whose kernel has ESP as on CI.
    # Each part's JUnit file (every test's time: 'python bench/suite.py' reads them) and
    # wall time.
    alone=0 rest=0 kernel=0 t0=$SECONDS
    rm -rf "$HOST_OUT"
    VPNLAB_HOST_GUARD=later pytest -q --dataplane userspace -m alone \
      --junitxml="$HOST_OUT/alone.xml" "$@" || alone=$?
    [ "$alone" = 5 ] && alone=0   # none selected (e.g. only tests/ asked for)
    t1=$SECONDS
    pytest -q -n "${VPNLAB_WORKERS:-2}" --dist loadgroup --dataplane userspace \
      --durations=10 --junitxml="$HOST_OUT/rest.xml" -m "not alone" "$@" || rest=$?
    t2=$SECONDS
    kernel_dataplane "$@" || kernel=$?
    t3=$SECONDS
    echo "setup: wall time: alone $((t1 - t0))s, side by side $((t2 - t1))s," \
      "kernel data plane $((t3 - t2))s, tests in all $((t3 - t0))s"
    for rc in "$alone" "$rest" "$kernel"; do [ "$rc" = 0 ] || exit "$rc"; done
    ;;
  *)
    echo "usage: $0 demo|test [pytest args]" >&2
    exit 2
    ;;
esac
