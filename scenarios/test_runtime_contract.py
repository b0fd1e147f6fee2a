"""The runtime contract: network namespaces and Docker containers behave alike.

Runbook, once per runtime (netns, docker): build a two-node lab straight on the runtime,
no daemons (nodes ``left`` and ``right``, release bookworm, forwarding off, both on one
segment as eth1, .1 and .2 of the first documentation /24 this machine has no address
in). Then drive every method of ``Runtime`` and expect the same observable behaviour from
both:

- ``run``: stdout, stderr and exit code come back; ``check`` raises LabError naming the
  node and the command; ``input`` reaches stdin; ``timeout`` is enforced (CommandTimeout
  within ~3 s, naming node and command, and nothing of the command left in the node);
- the nodes reach each other over the segment;
- ``write_files``/``read_file`` round-trip in the node's directory; a missing file is None;
- ``background``: a running Process (exit code None, output growing), ended by SIGINT with
  ping's summary in its output, or ending by itself with its exit code;
- ``spawn``: a detached daemon with its environment and its log, in ``processes``, with a
  /run of its own (what it writes there is not on the host's /run), gone after ``kill``;
- ``unix_socket``: a connected socket (netns) or None (docker);
- ``create_segment`` refuses more than MAX_SEGMENT_NODES nodes before creating anything;
- ``destroy``: nothing of the lab is left (namespaces, containers, networks), and a second
  ``destroy`` is harmless.

Every lab here is named ``ct-<pid>-<runtime>`` and destroyed (state directory included)
whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path, PurePosixPath

import pytest

from lab.core.errors import CommandTimeout, LabError
from lab.core.paths import lab_dir
from lab.core.waits import wait_until
from lab.runtime import make
from lab.runtime.base import MAX_SEGMENT_NODES, Link, Runtime
from lab.session.cleanup import leftovers

pytestmark = pytest.mark.every_runtime  # the runtime contract itself

RELEASE = "bookworm"
SYSCTLS = {"net.ipv4.ip_forward": "0"}
# The documentation networks, the first one this machine has no address in: a Docker
# segment is a bridge in the host's namespace, and the host answers ARP there for its own
# addresses (a node would reach the host instead of its neighbour).
CANDIDATES = [IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def _host_addresses() -> list[IPv4Interface]:
    links = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True).stdout)
    return [
        IPv4Interface(f"{a['local']}/{a['prefixlen']}")
        for link in links
        for a in link.get("addr_info", [])
    ]


SUBNET = next(n for n in CANDIDATES if not any(a.network.overlaps(n) for a in _host_addresses()))
LEFT, RIGHT = (IPv4Interface(f"{SUBNET[i]}/{SUBNET.prefixlen}") for i in (1, 2))
ADDRESSES = {"left": LEFT, "right": RIGHT}


def _name(kind: str, suffix: str = "") -> str:
    return f"ct-{os.getpid() % 10000}-{kind}{suffix}"


def _build(kind: str, name: str) -> Runtime:
    """Two nodes on one segment, each with its node directory in place (as a bring-up
    leaves it before starting daemons)."""
    rt = make(kind, name, [SUBNET])
    for node in ADDRESSES:
        rt.create_node(node, RELEASE, SYSCTLS)
    rt.create_segment("seg", SUBNET, len(ADDRESSES))
    for node, address in ADDRESSES.items():
        rt.attach(node, [Link("seg", "eth1", address)])
        rt.write_files(node, rt.node_dir(node), {"README": "runtime contract test\n"})
    return rt


def _pids(rt: Runtime, node: str, comm: str) -> set[int]:
    return {pid for pid, c in rt.processes(node).items() if c == comm}


def _remove(kind: str, name: str) -> None:
    try:
        make(kind, name, [SUBNET]).destroy()
    finally:
        shutil.rmtree(lab_dir(name), ignore_errors=True)


@pytest.fixture(scope="module")
def rt(lab_runtime: str) -> Iterator[Runtime]:
    name = _name(lab_runtime)
    try:
        yield _build(lab_runtime, name)
    finally:
        _remove(lab_runtime, name)


# --- run --------------------------------------------------------------------------------


def test_run_returns_stdout_stderr_and_exit_code(rt: Runtime) -> None:
    proc = rt.run("left", ["sh", "-c", "echo out; echo err >&2; exit 4"], check=False)
    assert (proc.stdout, proc.stderr, proc.returncode) == ("out\n", "err\n", 4)
    assert rt.run("left", ["true"]).returncode == 0


def test_run_check_raises_naming_node_and_command(rt: Runtime) -> None:
    with pytest.raises(LabError) as raised:
        rt.run("right", ["sh", "-c", "echo broken >&2; exit 5"])
    assert not isinstance(raised.value, CommandTimeout)
    message = str(raised.value)
    assert message.startswith("right: sh -c echo broken >&2; exit 5"), message
    assert "exited 5" in message and "broken" in message, message


def test_run_input_reaches_stdin(rt: Runtime) -> None:
    text = "line one\n  line 'two' $HOME \"three\"\n"
    assert rt.run("left", ["cat"], input=text).stdout == text
    assert rt.run("left", ["wc", "-l"], input=text).stdout.strip() == "2"


@pytest.mark.parametrize(
    "argv",
    [["sleep", "30"], ["sh", "-c", "sleep 30; echo not killed"]],
    ids=["command", "shell-with-child"],
)
def test_run_timeout_kills_the_command(rt: Runtime, argv: list[str]) -> None:
    before = _pids(rt, "left", "sleep")  # a container's own keep-alive is a sleep
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as raised:
        rt.run("left", argv, timeout=1)
    elapsed = time.monotonic() - t0
    assert 1 <= elapsed < 3.5, f"CommandTimeout after {elapsed:.1f}s"
    assert (raised.value.node, raised.value.argv, raised.value.timeout) == ("left", argv, 1)
    assert str(raised.value).startswith(f"left: {' '.join(argv)}"), str(raised.value)
    # Nothing of it is left running in the node (a shell's child included).
    assert not _pids(rt, "left", "sleep") - before, rt.processes("left")


# --- network ------------------------------------------------------------------------------


def test_nodes_reach_each_other_over_the_segment(rt: Runtime) -> None:
    rt.run("left", ["ping", "-c1", "-W1", str(RIGHT.ip)])
    rt.run("right", ["ping", "-c1", "-W1", str(LEFT.ip)])
    addresses = rt.run("left", ["ip", "-o", "-4", "addr", "show", "dev", "eth1"]).stdout
    assert str(LEFT) in addresses


def test_node_sysctls_are_set(rt: Runtime) -> None:
    assert rt.run("left", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    assert rt.run("left", ["sysctl", "-n", "net.ipv4.conf.all.rp_filter"]).stdout.strip() == "0"


# --- files --------------------------------------------------------------------------------


def test_write_files_and_read_file_round_trip(rt: Runtime) -> None:
    d = rt.node_dir("left")
    files = {"one.txt": "first line\nsecond line\n", "two.conf": "key = välue\n"}
    rt.write_files("left", d, files)
    for name, text in files.items():
        assert rt.read_file("left", d / name) == text
        # The node's own commands see the same file at the same path.
        assert rt.run("left", ["cat", str(d / name)]).stdout == text
    rt.write_files("left", d, {"one.txt": "replaced\n"})
    assert rt.read_file("left", d / "one.txt") == "replaced\n"
    assert rt.read_file("left", d / "no-such-file") is None
    assert rt.read_file("left", PurePosixPath("/nonexistent/dir/file")) is None


# --- background ---------------------------------------------------------------------------


def test_background_runs_until_stopped(rt: Runtime) -> None:
    argv = ["ping", "-i", "0.2", str(RIGHT.ip)]
    proc = rt.background("left", argv)
    try:
        assert (proc.node, proc.argv) == ("left", argv)
        first = wait_until(
            proc.output, lambda out: out.count("bytes from") >= 2, timeout=10, what="ping replies"
        )
        assert proc.exit_code is None
        wait_until(
            proc.output,
            lambda out: len(out) > len(first),
            timeout=5,
            what="more ping output",
        )
        assert proc.exit_code is None and proc.wait(0.1) is None
    finally:
        proc.stop(signal.SIGINT)
    assert proc.wait(10) == 0  # ping ends with 0 when replies came back
    assert proc.exit_code == 0
    assert "packets transmitted" in proc.output() and "0% packet loss" in proc.output()
    proc.stop()  # no-op once it ended


def test_background_command_that_ends_by_itself(rt: Runtime) -> None:
    proc = rt.background("right", ["sh", "-c", "echo hi; echo oops >&2; exit 3"])
    assert proc.wait(10) == 3
    assert proc.exit_code == 3
    assert "hi" in proc.output() and "oops" in proc.output()


# --- daemons ------------------------------------------------------------------------------


def test_spawn_detaches_a_daemon_with_a_run_of_its_own(rt: Runtime) -> None:
    marker = f"ct-run-{uuid.uuid4().hex[:12]}"
    log = rt.node_dir("right") / "daemon.log"
    before = set(rt.processes("right"))
    rt.spawn(
        "right",
        [
            "sh",
            "-c",
            f'echo "$CT_GREETING" > /run/{marker} && cat /run/{marker} && exec sleep 300',
        ],
        env={"CT_GREETING": "hello from the daemon"},
        log=log,
    )
    new = wait_until(
        lambda: {p: c for p, c in rt.processes("right").items() if p not in before},
        lambda procs: "sleep" in procs.values(),
        timeout=10,
        what="the spawned daemon in processes()",
    )
    # The daemon got its environment, its log, and wrote into a /run...
    wait_until(
        lambda: rt.read_file("right", log) or "",
        lambda text: "hello from the daemon" in text,
        timeout=5,
        what="the daemon's output in its log",
    )
    # ... which is not the host's /run.
    assert not Path("/run", marker).exists()
    pids = [p for p, c in new.items() if c == "sleep"]
    rt.kill("right", pids)
    wait_until(
        lambda: rt.processes("right"),
        lambda procs: not set(pids) & set(procs),
        timeout=5,
        what="the killed daemon to leave processes()",
    )
    rt.kill("right", pids)  # killing what is gone is harmless


# --- sockets ------------------------------------------------------------------------------

ECHO_SERVER = """
import os, socket, sys
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("listening", flush=True)
conn, _ = server.accept()
conn.sendall(conn.recv(100).upper())
conn.close()
"""


def test_unix_socket(rt: Runtime) -> None:
    path = rt.node_dir("left") / "ct-echo.sock"
    if rt.kind == "docker":
        # A container's sockets are behind the Docker API: the runtime says so.
        assert rt.unix_socket("left", path) is None
        return
    find = 'for tool in socat python3; do command -v "$tool"; done; true'
    tools = rt.run("left", ["sh", "-c", find]).stdout.split()
    if not tools:
        pytest.skip("neither socat nor python3 in the node to listen on a Unix socket")
    if tools[0].endswith("socat"):
        server = rt.background("left", ["socat", f"UNIX-LISTEN:{path}", "EXEC:tr a-z A-Z"])
    else:
        server = rt.background("left", [tools[0], "-c", ECHO_SERVER, str(path)])
    try:
        wait_until(
            lambda: rt.run("left", ["test", "-S", str(path)], check=False).returncode,
            lambda code: code == 0,
            timeout=10,
            what="the listening socket",
        )
        sock = rt.unix_socket("left", path)
        assert sock is not None
        with sock:
            sock.sendall(b"ping")
            if tools[0].endswith("socat"):
                sock.shutdown(1)
            assert sock.recv(100) == b"PING"
    finally:
        server.stop(signal.SIGTERM)
        server.wait(5)
        rt.run("left", ["rm", "-f", str(path)])


# --- limits and teardown -----------------------------------------------------------------


def test_create_segment_refuses_more_than_a_bridge_takes(rt: Runtime) -> None:
    with pytest.raises(LabError, match=str(MAX_SEGMENT_NODES)):
        rt.create_segment("huge", IPv4Network("10.0.0.0/8"), MAX_SEGMENT_NODES + 1)


def test_destroy_leaves_nothing(lab_runtime: str) -> None:
    name = _name(lab_runtime, "-x")
    try:
        rt = _build(lab_runtime, name)
        before = _pids(rt, "left", "sleep")
        rt.spawn("left", ["sleep", "300"], env={}, log=rt.node_dir("left") / "sleep.log")
        wait_until(
            lambda: _pids(rt, "left", "sleep") - before,
            bool,
            timeout=10,
            what="a daemon to be running before destroy",
        )
        assert leftovers(name)
        rt.destroy()
        shutil.rmtree(lab_dir(name), ignore_errors=True)
        assert leftovers(name) == []
        rt.destroy()  # a second destroy finds nothing and says nothing
        assert leftovers(name) == []
    finally:
        _remove(lab_runtime, name)
