"""A bulk TCP transfer between two nodes: ``size`` bytes from one to the other, counted where
they arrive, bounded in time. Pings prove a path for small packets; this proves it for
full-sized TCP segments, which is what an MTU problem (a PMTU black hole) breaks.

Both ends are small Perl programs (perl-base with IO::Socket::INET is in every Debian
system, the host and the node images alike; the images have no Python, netcat or curl).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.core.errors import LabError, WaitTimeout
from lab.core.waits import wait_until

if TYPE_CHECKING:
    from lab.session.handle import RunningLab

PORT = 5999

# Receives one connection, counts bytes until EOF or the alarm, says how many, closes
# (which ends the sender's wait for EOF: the sender only reports "done" once everything
# it wrote has been read here).
RECEIVER = r"""
use IO::Socket::INET; $| = 1;
my ($port, $secs) = @ARGV; my $n = 0;
$SIG{ALRM} = $SIG{INT} = $SIG{TERM} = sub { print "received $n stopped\n"; exit 0 };
alarm $secs;
my $l = IO::Socket::INET->new(LocalPort => $port, Listen => 1, ReuseAddr => 1, Proto => 'tcp')
  or do { print "listen failed: $!\n"; exit 1 };
print "listening\n";
my $c = $l->accept or do { print "accept failed: $!\n"; exit 1 };
while (my $r = sysread($c, my $buf, 65536)) { $n += $r }
print "received $n eof\n"; close $c;
"""

# Connects, writes ``bytes``, half-closes, waits for the receiver to close.
SENDER = r"""
use IO::Socket::INET; $| = 1;
my ($addr, $port, $bytes, $secs) = @ARGV; my ($sent, $conn) = (0, 0);
$SIG{ALRM} = sub { print "sent $sent connected $conn timeout\n"; exit 0 }; alarm $secs;
my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Proto => 'tcp')
  or do { print "sent 0 connected 0 $!\n"; exit 0 };
$conn = 1; my $buf = "x" x 65536;
while ($sent < $bytes) {
  my $left = $bytes - $sent;
  my $w = syswrite($s, $buf, $left < 65536 ? $left : 65536);
  last unless defined $w; $sent += $w;
}
shutdown($s, 1); 1 while sysread($s, my $x, 4096);
print "sent $sent connected 1 done\n";
"""

# Learned path MTUs (ICMP "fragmentation needed" cached per destination for 10 minutes)
# would let a transfer pass, or fail, because of an earlier one: forget them first, as a
# host that never talked to the other would (``ip route flush cache``). A container's
# /proc/sys is read-only (and ``ip route flush cache`` exits 0 there all the same), so there
# the routes via a gateway are re-added instead: their cached exceptions go with them.
FORGET_PMTU = (
    "echo 1 2>/dev/null >/proc/sys/net/ipv4/route/flush || ip -4 route show | grep ' via ' |"
    " while read -r r; do ip route del $r && ip route add $r; done"
)


@dataclass(frozen=True)
class Transfer:
    size: int
    received: int  # counted by the receiver
    sent: int  # written into the sender's socket (not all of it need have arrived)
    connected: bool
    done: bool  # the receiver read everything and closed

    @property
    def complete(self) -> bool:
        return self.done and self.received == self.size


def _field(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1)) if m else None


def transfer(
    running: RunningLab, src: str, dst: str, address: str, size: int, within: int
) -> Transfer:
    """Send ``size`` bytes over TCP from ``src`` to ``address`` (on node ``dst``), giving
    up after ``within`` seconds."""
    for node in (src, dst):
        running.exec(node, ["sh", "-c", FORGET_PMTU], check=True)
    # The receiver's own alarm only bounds it should the sender never run; once the sender
    # has given up, it is stopped and says what arrived by then.
    receiver = running.runtime.background(dst, ["perl", "-e", RECEIVER, str(PORT), str(within + 2)])
    try:
        try:
            wait_until(
                receiver.output,
                lambda out: "listening" in out or receiver.exit_code is not None,
                timeout=10,
                interval=0.05,
                what=f"a TCP receiver listening on {dst}",
            )
        except WaitTimeout:
            raise LabError(f"the transfer's receiver on {dst} did not start") from None
        if "listening" not in receiver.output():
            raise LabError(f"the transfer's receiver on {dst}: {receiver.output().strip()}")
        proc = running.exec(
            src,
            ["perl", "-e", SENDER, address, str(PORT), str(size), str(within)],
            timeout=within + 10,
        )
        if "done" not in proc.stdout:  # the sender gave up: what arrived by now is all
            receiver.stop(signal.SIGINT)
        receiver.wait(timeout=5)
    finally:
        receiver.stop(signal.SIGKILL)
    got, out = receiver.output(), proc.stdout
    return Transfer(
        size=size,
        received=_field(r"received (\d+)", got) or 0,
        sent=_field(r"sent (\d+)", out) or 0,
        connected="connected 1" in out,
        done="done" in out and "eof" in got,
    )
