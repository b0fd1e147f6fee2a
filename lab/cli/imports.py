"""`vpnlab import`: a customer's tunnel from the files in the ticket, as a topology."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from lab.cli.common import err, main, out
from lab.core.errors import InputError

if TYPE_CHECKING:
    from lab.importers.layout import Import

file_arg = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="topology file to write (default: <lab name>.yaml here); keys go beside it (.env)",
)
reveal_option = click.option(
    "--reveal-secrets", is_flag=True, help="write the keys into the topology (mode 0600)"
)
name_option = click.option("--name", default=None, help="lab name (default: from the file)")


def _networks(values: tuple[str, ...], option: str) -> list[IPv4Network]:
    out = []
    for v in values:
        try:
            out.append(IPv4Network(v, strict=True))
        except ValueError as exc:
            raise InputError(option, f"{v!r}: {exc}") from None
    return out


@main.group("import")
def import_group() -> None:
    """Reproduce a customer's tunnel: a topology from AWS's or the customer's own files."""


@import_group.command("aws")
@file_arg
@output_option
@click.option("--provider", default="aws", show_default=True, help="provider profile")
@reveal_option
@name_option
@click.option(
    "--ike",
    type=click.Choice(["1", "2"]),
    default=None,
    help="IKE version where the file does not name one (AWS accepts both)",
)
@click.option(
    "--customer-subnet",
    "customer_subnets",
    multiple=True,
    help="the customer's LAN (repeatable; default 172.16.1.0/24)",
)
@click.option(
    "--vpc-cidr",
    "vpc",
    multiple=True,
    help="the VPC's subnets (repeatable; default: the profile's lab)",
)
def import_aws(
    file: Path,
    output: Path | None,
    provider: str,
    reveal_secrets: bool,
    name: str | None,
    ike: str | None,
    customer_subnets: tuple[str, ...],
    vpc: tuple[str, ...],
) -> None:
    """An AWS Site-to-Site VPN connection's configuration (the CustomerGatewayConfiguration
    XML, describe-vpn-connections JSON, or the Generic text download) as a topology."""
    from lab.importers.aws import load_aws
    from lab.importers.layout import from_aws, lab_name
    from lab.topology.profiles import load_profile

    conn = load_aws(file, int(ike) if ike else None)
    imp = from_aws(
        conn,
        load_profile(provider),
        lab_name(name, conn.connection_id, file.stem),
        _networks(customer_subnets, "--customer-subnet"),
        _networks(vpc, "--vpc-cidr"),
    )
    _write(imp, output, reveal_secrets)


def _customer(
    file: Path,
    aws: Path | None,
    provider: str,
    name: str | None,
    reveal: bool,
    output: Path | None,
    kind: str,
    tunnels: list,
    warnings: list[str],
) -> None:
    from lab.importers.aws import load_aws
    from lab.importers.layout import lab_name, with_provider
    from lab.topology.profiles import load_profile

    conn = load_aws(aws) if aws else None
    imp = with_provider(
        tunnels,
        conn,
        load_profile(provider),
        source=str(file),
        kind=kind,
        name=lab_name(
            name,
            file.stem if file.stem not in ("swanctl", "ipsec") else None,
            conn.connection_id if conn else None,
            kind.replace(".", "-"),
        ),
        warnings=warnings,
    )
    _write(imp, output, reveal)


aws_option = click.option(
    "--aws",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the AWS connection's configuration: the provider side's keys, inside CIDRs, BGP",
)
provider_option = click.option(
    "--provider", default="aws", show_default=True, help="provider profile"
)


@import_group.command("swanctl")
@file_arg
@output_option
@provider_option
@aws_option
@reveal_option
@name_option
def import_swanctl(
    file: Path,
    output: Path | None,
    provider: str,
    aws: Path | None,
    reveal_secrets: bool,
    name: str | None,
) -> None:
    """A customer's swanctl.conf as the customer side, against the provider's profile
    (or the AWS connection given with --aws)."""
    from lab.importers.swanctl import load_swanctl

    tunnels, warnings = load_swanctl(file)
    _customer(file, aws, provider, name, reveal_secrets, output, "swanctl.conf", tunnels, warnings)


@import_group.command("ipsec-conf")
@file_arg
@output_option
@provider_option
@aws_option
@click.option(
    "--secrets",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="the customer's ipsec.secrets (PSKs); else keys are generated",
)
@reveal_option
@name_option
def import_ipsec_conf(
    file: Path,
    output: Path | None,
    provider: str,
    aws: Path | None,
    secrets: Path | None,
    reveal_secrets: bool,
    name: str | None,
) -> None:
    """A customer's ipsec.conf (with --secrets ipsec.secrets) as the customer side."""
    from lab.importers.ipsec_conf import load_ipsec_conf

    tunnels, warnings = load_ipsec_conf(file, secrets)
    _customer(file, aws, provider, name, reveal_secrets, output, "ipsec.conf", tunnels, warnings)


def _write(imp: Import, output: Path | None, reveal: bool) -> None:
    from lab.importers.layout import write

    written = write(imp, output or Path(f"{imp.name}.yaml"), reveal=reveal)
    for w in written.warnings:
        err.print(f"[yellow]warning[/]: {escape(w)}", highlight=False, soft_wrap=True)
    out.print(
        f"wrote {escape(str(written.topology))} (lab {imp.name}, {imp.routing}, "
        f"{len(imp.tunnels)} tunnel(s), provider profile {imp.profile.name})",
        highlight=False,
    )
    if written.env:
        out.print(f"wrote {escape(str(written.env))} (the keys, mode 0600)", highlight=False)
    out.print(f"next: vpnlab up {escape(str(written.topology))}", highlight=False)
