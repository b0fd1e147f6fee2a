"""Every config file a node needs, rendered from the resolved lab."""

from __future__ import annotations

from pathlib import Path, PurePath

import jinja2

from lab.render.swanctl import swanctl_conf
from lab.topology.model import Lab, Node

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("lab.render", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

# kernel-libipsec first: it must register before kernel-netlink to own the IPsec data plane.
PLUGINS_KERNEL = (
    "random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 pkcs8 x509 pubkey "
    "revocation constraints curve25519 gmp kernel-netlink socket-default vici"
)
PLUGINS_USERSPACE = "kernel-libipsec " + PLUGINS_KERNEL


def transit_interfaces(lab: Lab, node: Node) -> list[str]:
    """Interfaces on segments that more than one site uses (the 'internet')."""
    sites_on = {
        seg: {n.site for n in lab.nodes.values() for i in n.interfaces if i.segment == seg}
        for seg in lab.segments
    }
    return [i.name for i in node.interfaces if len(sites_on[i.segment]) > 1]


def render_node(
    lab: Lab,
    node: Node,
    node_dir: PurePath,
    *,
    userspace: bool = True,
    vici: str | None = None,
    reveal_secrets: bool = False,
) -> dict[str, str]:
    """File name -> text for one node; only the files that node uses. ``vici`` is where
    charon listens for control (default: a Unix socket in the node's directory)."""
    ctx = {
        "lab": lab,
        "node": node,
        "dir": str(node_dir),
        "vici": vici or f"unix://{node_dir}/charon.vici",
    }
    files = {
        "nftables.nft": _env.get_template("nftables/node.nft.j2").render(
            **ctx, outside=transit_interfaces(lab, node)
        )
    }
    if node.charon:
        files["strongswan.conf"] = _env.get_template("strongswan/strongswan.conf.j2").render(
            **ctx,
            plugins=PLUGINS_USERSPACE if userspace else PLUGINS_KERNEL,
            retransmit=lab.retransmit,
        )
        files["swanctl.conf"] = swanctl_conf(lab, node.name, reveal=reveal_secrets)
    if node.frr:
        # One file per daemon, read by the daemon itself at start: a config loaded later
        # through vtysh makes bgpd hold its sessions back for another second.
        for daemon in ("staticd", "bgpd"):
            files[f"{daemon}.conf"] = _env.get_template(f"frr/{daemon}.conf.j2").render(
                **ctx, daemon=daemon
            )
    if "frr.conf" in node.supplied:
        # The node's BGP is the supplied file's, loaded after bgpd starts with none of its
        # own; the lab's static routes (staticd) stay vpnlab's.
        files["bgpd.conf"] = _env.get_template("frr/bgpd.conf.j2").render(
            **{**ctx, "node": node.model_copy(update={"bgp": None})}, daemon="bgpd"
        )
    for name, path in node.supplied.items():
        files[name] = Path(path).read_text()
    return files


def render_lab(lab: Lab, out: Path, *, reveal_secrets: bool = False) -> list[Path]:
    """Write every node's files under ``out/<node>/`` (``vpnlab render``)."""
    written = []
    for node in lab.nodes.values():
        node_dir = out / node.name
        node_dir.mkdir(parents=True, exist_ok=True)
        for name, text in render_node(
            lab, node, node_dir.resolve(), reveal_secrets=reveal_secrets
        ).items():
            (node_dir / name).write_text(text)
            written.append(node_dir / name)
    return written
