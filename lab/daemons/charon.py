"""strongSwan's charon, one per gateway node, driven through the ``vici`` client."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import vici

from lab.core.errors import LabError
from lab.core.waits import wait_until
from lab.daemons.logs import tail
from lab.runtime.base import Runtime

CHARON = "/usr/lib/ipsec/charon"
FAILURE_WORDS = (
    "fail",
    "mismatch",
    "no proposal",
    "unacceptable",
    "no matching",
    "giving up",
    "unable",
    "error",
    "invalid",
    "not found",
    "no shared key",
    "no peer config",
    "retransmit",
)


def decode(value):
    """vici answers with bytes all the way down; turn them into str."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class Charon:
    def __init__(self, runtime: Runtime, node: str) -> None:
        self.runtime = runtime
        self.node = node
        self.dir = runtime.node_dir(node)
        self.log = self.dir / "charon.log"

    def start(self) -> None:
        self.runtime.spawn(
            self.node,
            [CHARON],
            env={"STRONGSWAN_CONF": str(self.dir / "strongswan.conf")},
            log=self.dir / "charon.stdout",
        )

    def wait_ready(self, timeout: float = 10) -> None:
        wait_until(
            self._answers,
            bool,
            timeout=timeout,
            interval=0.02,
            what=f"charon's vici socket on {self.node}",
            explain=lambda _: self.log_tail(),
        )

    def _answers(self) -> bool:
        # Docker's port proxy accepts at once and hangs up while charon is not listening
        # yet: any failure, not only a refused connection, means "not ready".
        try:
            sock = self.runtime.vici_socket(self.node)
        except OSError:
            return False
        try:
            sock.settimeout(1)
            vici.Session(sock=sock).version()
            return True
        except Exception:
            return False
        finally:
            sock.close()

    @contextmanager
    def session(self) -> Iterator[vici.Session]:
        # vici speaks over any stream socket: a Unix socket in the node's directory (netns)
        # or TCP to a port the container publishes (Docker).
        sock = self.runtime.vici_socket(self.node)
        try:
            yield vici.Session(sock=sock)
        finally:
            sock.close()

    def load(self, connections: dict[str, dict], secrets: dict[str, dict]) -> None:
        with self.session() as s:
            for secret in secrets.values():
                s.load_shared(
                    {
                        "type": "IKE",
                        "data": secret["secret"],
                        "owners": [secret["id-local"], secret["id-remote"]],
                    }
                )
            for name, conn in connections.items():
                try:
                    s.load_conn({name: conn})
                except vici.exception.CommandException as exc:
                    raise LabError(
                        f"{self.node}: charon refused connection {name}: {exc}"
                    ) from None

    def load_file(self, path: str) -> None:
        """Load a swanctl.conf as it is written, with swanctl itself, inside the node: a
        customer's own file, not a dict vpnlab built."""
        proc = self.runtime.run(
            self.node,
            [
                "swanctl",
                "--load-all",
                "--noprompt",
                "--file",
                path,
                "--uri",
                self.runtime.vici_uri(self.node),
            ],
            check=False,
        )
        if proc.returncode != 0:
            said = [
                line for line in (proc.stdout + proc.stderr).splitlines() if "secret" not in line
            ]
            raise LabError(
                f"{self.node}: swanctl refused {path} ({proc.returncode}): " + " / ".join(said[-6:])
            )

    def list_sas(self) -> list[dict]:
        """IKE SAs as ``[{name: {...}}]``; an empty list if charon does not answer."""
        try:
            with self.session() as s:
                return [decode(sa) for sa in s.list_sas()]
        except OSError:
            return []

    def list_conns(self) -> dict[str, dict]:
        """The loaded connections as charon holds them, by name; {} if it does not answer."""
        try:
            with self.session() as s:
                return {k: v for conn in s.list_conns() for k, v in decode(conn).items()}
        except OSError:
            return {}

    def ike_sas(self) -> dict[str, dict]:
        """IKE SAs by connection name (the newest wins when there are duplicates)."""
        out: dict[str, dict] = {}
        for entry in self.list_sas():
            for name, sa in entry.items():
                if name not in out or int(sa.get("uniqueid", 0)) > int(
                    out[name].get("uniqueid", 0)
                ):
                    out[name] = sa
        return out

    @contextmanager
    def watch(self, kinds: list[str]) -> Iterator[queue.Queue[tuple[str, dict]]]:
        """Subscribe to vici events (``ike-updown``, ``child-updown``, ``ike-rekey``...);
        yields a queue of (kind, body) that fills until the block ends.

        Subscribed before it yields, so an action taken inside the block is never missed.
        """
        events: queue.Queue[tuple[str, dict]] = queue.Queue()
        subscribed, stop = threading.Event(), threading.Event()

        def pump() -> None:
            with self.session() as s:
                # listen() registers, then yields (None, None) every 0.1 s without events.
                for kind, body in s.listen(kinds, timeout=0.1):
                    subscribed.set()
                    if stop.is_set():
                        return
                    if kind is not None:
                        events.put((kind.decode(), decode(body)))

        thread = threading.Thread(target=pump, name=f"vici-events-{self.node}", daemon=True)
        thread.start()
        if not subscribed.wait(5):
            raise LabError(f"{self.node}: could not subscribe to vici events {kinds}")
        try:
            yield events
        finally:
            stop.set()
            thread.join(2)

    def initiate(self, child: str, timeout_ms: int = 10000) -> list[str]:
        return self._control("initiate", {"child": child, "timeout": timeout_ms})

    def terminate(self, ike: str | None = None, child: str | None = None) -> list[str]:
        args = {"ike": ike} if ike else {"child": child}
        return self._control("terminate", {**args, "timeout": -1})

    def rekey(
        self,
        ike: str | None = None,
        child: str | None = None,
        *,
        ike_id: int | None = None,
        child_id: int | None = None,
        reauth: bool = False,
    ) -> int:
        """Have charon rekey IKE_SAs or CHILD_SAs; returns how many SAs matched.

        The selectors are vici's own, with its matching rules (strongSwan 5.9.8,
        vici_control.c): with ``child`` and/or ``child_id`` the CHILD_SAs matching all of
        the given selectors (``ike``/``ike_id`` narrowing the IKE_SAs) are rekeyed;
        otherwise every IKE_SA named ``ike`` *or* with uniqueid ``ike_id``. So rekey one
        IKE_SA by ``ike_id`` alone: with the name too, an IKEv1 tunnel's leftover ISAKMP
        SA from an earlier reauthentication would be reauthenticated as well.

        Unlike initiate/terminate, vici's ``rekey`` is a plain request (the vici package's
        ``Session.rekey`` is ``request``, not ``streamed_request``): charon queues a rekey
        job per matching SA and answers at once with ``matches``. Whether a rekey completes
        is seen afterwards, from ``ike-rekey``/``child-rekey`` events or new SPIs in list-sas.
        """
        args = {
            k: str(v)
            for k, v in (("ike", ike), ("child", child), ("ike-id", ike_id), ("child-id", child_id))
            if v is not None
        }
        if not args:
            raise LabError("rekey needs a selector: ike, child, ike_id or child_id")
        if reauth:
            args["reauth"] = "yes"
        with self.session() as s:
            try:
                answer = decode(s.rekey(args))
            except vici.exception.CommandException as exc:
                # e.g. "no matching SAs to rekey found"
                raise LabError(f"{self.node}: rekey {args} failed: {exc}") from None
        return int(answer.get("matches", 0))

    def reload_settings(self) -> None:
        """Have charon re-read strongswan.conf (and what it includes); this reloads its
        loggers too."""
        with self.session() as s:
            try:
                s.reload_settings()
            except vici.exception.CommandException as exc:
                raise LabError(f"{self.node}: reload-settings failed: {exc}") from None

    def _control(self, command: str, args: dict) -> list[str]:
        # initiate/terminate stream log lines and only raise at the end: always consume.
        lines: list[str] = []
        with self.session() as s:
            try:
                for msg in getattr(s, command)(args):
                    lines.append(decode(msg).get("msg", ""))
            except vici.exception.CommandException as exc:
                raise LabError(
                    f"{self.node}: {command} {args} failed: {exc}; log: {lines[-5:]}"
                ) from None
        return lines

    def log_text(self) -> str:
        return self.runtime.read_file(self.node, self.log) or ""

    def log_tail(self, lines: int = 15, grep: str | None = None) -> str:
        return tail(self.log_text(), lines, grep)

    def tunnel_log(self, tunnel: str, lines: int = 8) -> str:
        """What charon said about one connection, failures first (they explain the rest)."""
        said = tail(self.log_text(), 400, grep=f"<{tunnel}|").splitlines()
        if not said:
            return f"(charon logged nothing for {tunnel}: no IKE packet exchanged)"
        failures = [line for line in said if any(w in line.lower() for w in FAILURE_WORDS)]
        return "\n".join((failures or said)[-lines:])
