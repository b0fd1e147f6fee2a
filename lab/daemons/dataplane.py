"""Which IPsec data plane a lab can use: the kernel's ESP, or strongSwan's userspace one."""

from __future__ import annotations

from lab.core.errors import LabError
from lab.runtime.base import Runtime
from lab.topology.choices import AUTO, KERNEL, USERSPACE

__all__ = ["AUTO", "KERNEL", "USERSPACE", "choose", "detect", "plane_for"]

# A throw-away SA with made-up keys: the kernel either accepts the ESP type or says
# "Requested type not found"; the node's namespace is brand new, so nothing else is touched.
PROBE = [
    "ip",
    "xfrm",
    "state",
    "add",
    "src",
    "192.0.2.1",
    "dst",
    "192.0.2.2",
    "proto",
    "esp",
    "spi",
    "0x0badf00d",
    "enc",
    "cbc(aes)",
    "0x" + "00" * 16,
    "auth",
    "hmac(sha1)",
    "0x" + "00" * 20,
]


def detect(runtime: Runtime, node: str) -> str:
    """Kernel when ESP works in ``node``'s namespace, else userspace (kernel-libipsec)."""
    if runtime.run(node, PROBE, check=False).returncode != 0:
        return USERSPACE
    runtime.run(node, ["ip", "xfrm", "state", "flush"], check=False)
    return KERNEL


def choose(asked: str, offered: str, node: str) -> str:
    """The plane ``node`` runs: what its kernel offers (auto), or what was asked for.
    Userspace needs only a TUN device, so it can always be had."""
    if asked == AUTO:
        return offered
    if asked == KERNEL and offered != KERNEL:
        raise LabError(
            f"{node}: data plane 'kernel' asked for, but the node's kernel has no "
            f"ESP (an ESP state cannot be added); use dataplane auto or userspace"
        )
    return asked


def plane_for(asked: str, runtime: Runtime, node: str) -> str:
    """The plane ``node`` runs, probing its kernel only when the answer depends on it."""
    if asked == USERSPACE:
        return USERSPACE
    return choose(asked, detect(runtime, node), node)
