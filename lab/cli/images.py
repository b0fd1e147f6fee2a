"""`vpnlab image ...`: the Docker images lab nodes run (strongSwan + FRR per release)."""

from __future__ import annotations

import time

import click
from rich.markup import escape
from rich.table import Table

from lab.cli.common import main, out
from lab.topology.choices import RELEASES


@main.group()
def image() -> None:
    """Docker images for lab nodes (strongSwan + FRR per Debian release)."""


@image.command(name="build")
@click.option(
    "--release",
    type=click.Choice([*RELEASES, "all"]),
    default="bookworm",
    show_default=True,
    help="Debian release of the image (all: every release)",
)
@click.option(
    "--base",
    type=click.Choice(["auto", "official", "debootstrap"]),
    default="auto",
    show_default=True,
    help="base image: debian:<release>-slim from a registry, or built offline",
)
def image_build(release: str, base: str) -> None:
    """Build the node image(s); an image whose inputs are unchanged is not rebuilt."""
    from lab.runtime.docker import images

    for rel in list(RELEASES) if release == "all" else [release]:
        t0 = time.monotonic()
        with out.status(f"{rel}: starting") as spinner:

            def progress(text: str, transient: bool = False, rel: str = rel) -> None:
                if transient:
                    spinner.update(f"{rel}: {escape(text[:110])}")
                else:
                    out.print(f"  {rel}: {escape(text)}", highlight=False, soft_wrap=True)

            tag = images.build(rel, progress, base=base)
        out.print(f"[green]✓[/] {rel}: {tag} in {time.monotonic() - t0:.1f}s")


@image.command(name="list")
def image_list() -> None:
    """vpnlab's images (label vpnlab=1) with their strongSwan and FRR versions."""
    from lab.runtime.docker import images

    t = Table(title="vpnlab images", title_justify="left")
    for col in ("release", "kind", "tags", "size", "strongSwan", "FRR", "from"):
        t.add_column(col, no_wrap=col == "tags")
    for row in images.list_images():
        v = row["versions"]
        t.add_row(
            row["release"],
            row["kind"],
            "\n".join(row["tags"]) or row["id"],
            f"{row['size_mb']:.0f} MB",
            v.get("strongswan-charon", "-"),
            v.get("frr", "-"),
            row["base"],
        )
    out.print(t)
