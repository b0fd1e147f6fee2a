"""`vpnlab`: a thin command line over the library; each command calls one function."""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab import cleanup, deploy, faults, state
from lab.errors import LabError, VpnlabError
from lab.render import render_lab
from lab.runtime import choose as choose_runtime
from lab.status import collect
from lab.topology import json_schema, load_lab

# Piped output (CI logs, files) gets room for the status tables.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


def _fail(exc: VpnlabError) -> None:
    # The message may quote user input such as "[red]": never let rich read it as markup.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VpnlabError as exc:
            _fail(exc)


@click.group(cls=_Group)
@click.version_option(package_name="vpnlab")
def main() -> None:
    """Site-to-site IPsec VPN labs with real strongSwan and FRR."""


def _pick_lab(name: str | None) -> str:
    if name:
        return name
    labs = state.names()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is running (vpnlab up FILE)")
    raise LabError(f"several labs are running ({', '.join(labs)}): name one with --lab")


lab_option = click.option("--lab", "-l", "lab_name", help="lab name (default: the only one up)")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check a topology file; exit 2 naming the field and the rule it breaks."""
    lab = load_lab(file)
    tunnels = ", ".join(f"{t.name}: {t.routing}/IKEv{t.provider.ike}"
                        for t in lab.tunnels.values())
    out.print(f"{file}: ok — lab [bold]{lab.name}[/], profile {lab.profile}, "
              f"{len(lab.nodes)} nodes, {len(lab.tunnels)} tunnels ({tunnels})")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("rendered"), show_default=True)
@click.option("--reveal-secrets", is_flag=True, help="write the real PSKs into swanctl.conf")
def render(file: Path, output: Path, reveal_secrets: bool) -> None:
    """Write every node's strongSwan, FRR (staticd, bgpd) and nftables files."""
    lab = load_lab(file)
    written = render_lab(lab, output, reveal_secrets=reveal_secrets)
    for path in written:
        out.print(f"  {path}")
    out.print(f"{len(written)} files for lab {lab.name} in {output}/")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="lab name (default: the file's name:), to run a second copy")
@click.option("--timeout", default=deploy.CONVERGE_TIMEOUT, show_default=True,
              help="seconds to wait for convergence")
@click.option("--keep-on-failure/--no-keep-on-failure", default=True, show_default=True,
              help="leave a lab that did not converge up for inspection")
@click.option("--runtime", type=click.Choice(["auto", "netns", "docker"]), default=None,
              help="node runtime (default: the topology's runtime:, else auto = Docker when "
                   "an engine answers, else network namespaces)")
@click.option("--dataplane", type=click.Choice(["auto", "userspace", "kernel"]), default=None,
              help="IPsec data plane (default: the topology's dataplane:, else auto = the "
                   "kernel's ESP where a gateway's kernel has it, else userspace)")
def up(file: Path, name: str | None, timeout: float, keep_on_failure: bool,
       runtime: str | None, dataplane: str | None) -> None:
    """Bring a lab up and wait until every tunnel and BGP session has converged."""
    lab = load_lab(file, name=name)
    if dataplane:
        lab = lab.model_copy(update={"dataplane": dataplane})
    kind, why = choose_runtime(runtime or lab.runtime)
    out.print(f"bringing up lab [bold]{lab.name}[/] from {file} on the {kind} runtime ({why})")
    t0 = time.monotonic()
    with out.status("create nodes") as spinner:
        def progress(phase: str, seconds: float) -> None:
            out.print(f"  [green]✓[/] {phase:<22} {seconds:6.2f}s")
            spinner.update(f"after {phase}")

        def pending(problems: list) -> None:
            first = escape(str(problems[0])) if problems else "done"
            spinner.update(f"waiting for convergence: {len(problems)} pending, e.g. {first}")

        running = deploy.up(lab, progress=progress, pending=pending, timeout=timeout,
                            keep_on_timeout=keep_on_failure, runtime=kind)
    out.print(f"[bold green]converged[/] in {time.monotonic() - t0:.2f}s")
    _print_status(collect(running))


@main.command()
@lab_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(lab_name: str | None, as_json: bool) -> None:
    """Tunnels (IKE/CHILD state, proposals, counters, BGP) and nodes (daemons alive)."""
    running = deploy.RunningLab.attach(_pick_lab(lab_name))
    data = collect(running)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_status(data)


def _print_status(data: dict) -> None:
    planes = sorted(set(data["dataplane"].values()))
    plane = planes[0] if len(planes) == 1 else ", ".join(f"{n} {p}" for n, p in
                                                         data["dataplane"].items())
    out.print(f"lab [bold]{data['lab']}[/]  runtime {data['runtime']}  "
              f"data plane {plane or '-'} "
              f"({'auto' if data.get('dataplane_asked', 'auto') == 'auto' else 'asked for'})  "
              f"profile {data['profile']}")
    t = Table(title="tunnels", title_justify="left")
    for col in ("tunnel", "node", "IKE", "IKE proposal", "CHILD", "ESP proposal", "pkts in/out",
                "BGP"):
        t.add_column(col)
    for tun in data["tunnels"]:
        for side in ("provider", "customer"):
            s = tun[side]
            bgp = s.get("bgp")
            for i, c in enumerate(s["children"] or [{}]):
                first = i == 0
                t.add_row(
                    f"{tun['name']} {tun['routing']}" if first and side == "provider" else "",
                    f"{s['node']} ({side[0]})" if first else "",
                    f"{_state(s['ike_state'])} v{s['ike_version']}" if first else "",
                    (s["ike_proposal"] or "-") if first else "",
                    _state(c.get("state", "-")), c.get("esp_proposal", "-"),
                    f"{c.get('packets_in', 0)}/{c.get('packets_out', 0)}",
                    f"{_state(bgp['state'])} {bgp['prefixes_received']} pfx"
                    if bgp and first else "")
    out.print(t)
    n = Table(title="nodes", title_justify="left")
    for col in ("node", "site", "role", "addresses", "daemons"):
        n.add_column(col)
    for node in data["nodes"]:
        daemons = " ".join(f"{d}:{'[green]up[/]' if ok else '[red]DOWN[/]'}"
                           for d, ok in node["daemons"].items()) or "-"
        n.add_row(node["name"], node["site"], node["role"], " ".join(node["addresses"]), daemons)
    out.print(n)
    for f in data.get("faults", []):
        started = time.strftime("%H:%M:%S", time.localtime(f["started"]))
        out.print(f"[magenta]fault {f['id']}[/] {f['kind']}: {escape(f['description'])} "
                  f"(since {started}, {f['age_s']:.0f}s)", highlight=False)
    for d in data.get("diagnosis", []):
        color = "red" if d["severity"] == "error" else "yellow"
        out.print(f"[{color}]{escape(d['message'])}[/]", highlight=False, soft_wrap=True)


def _state(value: str) -> str:
    good = {"ESTABLISHED", "INSTALLED", "Established"}
    return f"[green]{value}[/]" if value in good else f"[yellow]{value}[/]"


@main.command(name="exec", context_settings={"ignore_unknown_options": True})
@lab_option
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab_name: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside NODE: vpnlab exec app -- ping -c 3 172.16.1.100"""
    running = deploy.RunningLab.attach(_pick_lab(lab_name))
    proc = running.exec(node, list(command))
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    sys.exit(proc.returncode)


@main.command()
@click.argument("name", required=False)
def down(name: str | None) -> None:
    """Stop a lab's daemons and remove its namespaces and state."""
    name = _pick_lab(name)
    try:
        deploy.RunningLab.attach(name).down()
    except LabError:
        # No readable state (e.g. killed mid-prepare): remove by name, in every runtime.
        cleanup.destroy_lab(name)
    out.print(f"lab {name} is down")


@main.command()
@click.option("--all", "all_", is_flag=True, required=True,
              help="required: remove every lab's leftovers")
def destroy(all_: bool) -> None:
    """Remove every vpnlab namespace, daemon and state directory, even after a crash."""
    removed = cleanup.destroy_all()
    for kind, items in removed.items():
        out.print(f"{kind}: {', '.join(map(str, items)) or 'none'}")


@main.group()
def fault() -> None:
    """Break a running lab on purpose, list what is broken, undo it."""


def _value(text: str) -> object:
    if text.lower() in ("true", "yes"):
        return True
    if text.lower() in ("false", "no"):
        return False
    return int(text) if text.isdigit() else text


@fault.command(name="add")
@lab_option
@click.argument("kind")
@click.argument("params", nargs=-1)
def fault_add(lab_name: str | None, kind: str, params: tuple[str, ...]) -> None:
    """Inject a fault: vpnlab fault add kill node=vgw1 daemon=charon"""
    args = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep:
            raise LabError(f"fault parameters are key=value, got {p!r}")
        args[key] = _value(value)
    running = deploy.RunningLab.attach(_pick_lab(lab_name))
    try:
        f = faults.inject(running, kind, **args)
    except TypeError as exc:  # wrong or missing parameters for this kind
        raise LabError(f"fault {kind}: {exc}; see 'vpnlab fault kinds'") from None
    out.print(f"fault {f.id}: {escape(f.description)}", highlight=False)


@fault.command(name="clear")
@lab_option
@click.argument("fault_id", type=int, required=False)
def fault_clear(lab_name: str | None, fault_id: int | None) -> None:
    """Undo one fault (by id) or all of them."""
    running = deploy.RunningLab.attach(_pick_lab(lab_name))
    for f in faults.clear(running, fault_id):
        out.print(f"cleared fault {f.id}: {escape(f.description)}", highlight=False)


@fault.command(name="list")
@lab_option
def fault_list(lab_name: str | None) -> None:
    """Active faults, oldest first, with when they started."""
    running = deploy.RunningLab.attach(_pick_lab(lab_name))
    for f in faults.active(running):
        started = time.strftime("%H:%M:%S", time.localtime(f.started))
        out.print(f"{f.id}  {started}  {f.kind:<10} {escape(f.description)}", highlight=False)


@fault.command(name="kinds")
def fault_kinds() -> None:
    """The fault kinds and their parameters."""
    for name, kind in sorted(faults.FAULTS.items()):
        params = list(inspect.signature(kind.apply).parameters.values())[2:]
        sig = " ".join(p.name + ("" if p.default is p.empty else f"={p.default}")
                       for p in params)
        out.print(f"{name:<10} {sig}\n           {kind.help}", highlight=False)


@main.command()
def schema() -> None:
    """Print the topology JSON Schema (for editors)."""
    click.echo(json_schema())


@main.group()
def image() -> None:
    """Docker images for lab nodes (strongSwan + FRR per Debian release)."""


@image.command(name="build")
@click.option("--release", type=click.Choice(["bookworm", "trixie", "all"]), default="bookworm",
              show_default=True, help="Debian release of the image (all: every release)")
@click.option("--base", type=click.Choice(["auto", "official", "debootstrap"]), default="auto",
              show_default=True,
              help="base image: debian:<release>-slim from a registry, or built offline")
def image_build(release: str, base: str) -> None:
    """Build the node image(s); an image whose inputs are unchanged is not rebuilt."""
    from lab import images

    releases = list(images.RELEASES) if release == "all" else [release]
    for rel in releases:
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
    from lab import images

    t = Table(title="vpnlab images", title_justify="left")
    for col in ("release", "kind", "tags", "size", "strongSwan", "FRR", "from"):
        t.add_column(col, no_wrap=col == "tags")
    for row in images.list_images():
        v = row["versions"]
        t.add_row(row["release"], row["kind"], "\n".join(row["tags"]) or row["id"],
                  f"{row['size_mb']:.0f} MB", v.get("strongswan-charon", "-"),
                  v.get("frr", "-"), row["base"])
    out.print(t)


if __name__ == "__main__":
    main()
