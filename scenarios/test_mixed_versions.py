"""A customer on a newer strongSwan than the provider: Debian 12 (strongSwan 5.9, FRR 8.4)
on the provider's side, Debian 13 (strongSwan 6.0, FRR 10) on the customer's.

Runbook (Docker runtime; images per node): bring up the Tray BGP lab over IKEv2 and
IKEv1 with the customer's nodes on the newer release; both tunnels establish, BGP
sessions between FRR 8.4 and 10 are Established, and traffic crosses both ways.
"""

from __future__ import annotations

import pytest
import yaml

from lab.observe.convergence import convergence_problems
from lab.ops.traffic import packets, ping
from lab.testing.plugin import lab_name, running_lab, topology_path

pytestmark = pytest.mark.every_runtime  # node releases are container images

VERSION = {"bookworm": ("5.9.", "8.4."), "trixie": ("6.0.", "10.")}


def _versions(lab, node: str) -> tuple[str, str]:
    swan = lab.exec(node, ["sh", "-c", "swanctl --help 2>&1 | head -1"]).stdout
    frr = lab.exec(node, ["/usr/lib/frr/zebra", "--version"]).stdout
    return swan.strip(), frr.splitlines()[0] if frr else ""


@pytest.mark.parametrize("ike", [2, 1])
def test_provider_on_debian12_customer_on_debian13(ike, tmp_path, lab_runtime):
    if lab_runtime != "docker":
        pytest.skip("node releases are container images: Docker runtime only")
    topo = yaml.safe_load(topology_path("tray-bgp-ikev2.yaml").read_text())
    topo["tunnel_defaults"].update(ike=ike, dpd={"delay": "2s", "timeout": "6s"})
    for node in topo["sites"]["acme"]["nodes"].values():
        node["release"] = "trixie"
    path = tmp_path / f"mixed-v{ike}.yaml"
    path.write_text(yaml.safe_dump(topo))

    with running_lab(path, name=lab_name(path, f"-v{ike}"), runtime="docker", timeout=60) as lab:
        provider, customer = _versions(lab, "vgw1"), _versions(lab, "cgw")
        print(f"\nprovider {provider}\ncustomer {customer}")
        assert VERSION["bookworm"][0] in provider[0] and VERSION["bookworm"][1] in provider[1]
        assert VERSION["trixie"][0] in customer[0] and VERSION["trixie"][1] in customer[1]
        assert convergence_problems(lab) == []
        versions = {sa["version"] for sa in lab.charon("cgw").ike_sas().values()}
        assert versions == {str(ike)}
        before = packets(lab)
        assert ping(lab, "pc", "10.10.0.100").received == 5
        assert ping(lab, "app", "172.16.1.100").received == 5
        after = packets(lab)
        assert sum(after[k][0] - before[k][0] for k in after) >= 20
