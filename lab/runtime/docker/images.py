"""Docker images for lab nodes: one per Debian release, tagged by what went into it.

`build(release)` returns a tag `vpnlab-node:<release>-<digest>`, the digest being a hash of the
build context (images/Dockerfile), the build arguments and the base image's id. An image whose
tag exists is not rebuilt, so a second call costs a few Docker API look-ups.

The base image comes from one of two places, and `build` says which and why:
- the official `debian:<release>-slim`, if it is present or a registry answers a pull;
- otherwise (no registry reachable, as on this project's CI machine) a base built offline:
  `debootstrap --variant=minbase <release>` from the mirror the host's apt sources name, with
  those sources (the release substituted) inside, imported as `vpnlab-base:<release>-<digest>`
  with the label `vpnlab.base=<release>`.
The apt-get install runs inside a classic (non-BuildKit) `docker build`; a mirror the host
resolves through /etc/hosts is passed to it as an extra host, since the container cannot see
the host's /etc/hosts.

Everything goes through the Docker SDK (the daemon here speaks API 1.41; the version is
negotiated). The only external programs are debootstrap and tar, to make the base rootfs:
the SDK streams tar's output into the image import, it has no way to make a rootfs itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.hostlock import host_lock
from lab.core.shipped import IMAGES, shipped
from lab.runtime.docker.apt_sources import (
    Mirrors,
    debian_mirrors,
    extra_hosts,
    host_apt_sources,
    host_codename,
)
from lab.runtime.docker.engine import LABEL, DockerError, client, image_or_none, short_error
from lab.runtime.docker.tags import NODE_REPO, base_tag, context_digest, node_tag
from lab.topology.choices import RELEASES

BASE_LABEL = "vpnlab.base"  # vpnlab.base=<release> on an imported base image
KIND_LABEL = "vpnlab.kind"  # base | node (a node inherits its base's labels)
REGISTRY_TIMEOUT = 20.0  # seconds for one pull of debian:<release>-slim
DEBOOTSTRAP_TIMEOUT = 900
BUILD_TIMEOUT = 1800
HOSTS_FILE = Path("/etc/hosts")
SLIM_DPKG_RULES = (
    "path-exclude /usr/share/doc/*",
    "path-include /usr/share/doc/*/copyright",
    "path-exclude /usr/share/man/*",
    "path-exclude /usr/share/info/*",
    "path-exclude /usr/share/locale/*",
    "path-exclude /usr/share/lintian/*",
)

Progress = Callable[..., None]  # progress(text, transient=False)


class ImageError(DockerError):
    """An image could not be built or inspected."""


def _quiet(text: str, transient: bool = False) -> None:
    pass


@dataclass
class Base:
    ref: str  # what FROM uses
    image_id: str
    source: str  # "official" | "debootstrap"
    why: str
    apt_hosts: list[str] = field(default_factory=list)


def resolve_base(c, release: str, progress: Progress = _quiet, prefer: str = "auto") -> Base:
    """The base image for `release`: present locally, pulled, or made offline (in that order).

    prefer: "auto", "official" (fail without a registry) or "debootstrap" (never pull)."""
    official = f"debian:{release}-slim"
    mirrors = debian_mirrors(host_apt_sources(), host_codename())
    bt = base_tag(release, mirrors)
    if prefer != "debootstrap" and (img := image_or_none(c, official)):
        return Base(
            official, img.id, "official", f"{official} is present locally", ["deb.debian.org"]
        )
    if prefer != "official" and (img := image_or_none(c, bt)):
        return Base(
            bt,
            img.id,
            "debootstrap",
            f"{bt} (debootstrap from {mirrors.main}) is present locally",
            mirrors.hosts,
        )
    if prefer != "debootstrap":
        progress(
            f"pulling {official} (a registry answering within {REGISTRY_TIMEOUT:.0f}s?)",
            transient=True,
        )
        t0 = time.monotonic()
        try:
            pull = client(timeout=REGISTRY_TIMEOUT)
            img = pull.images.pull("debian", tag=f"{release}-slim")
            return Base(
                official,
                img.id,
                "official",
                f"pulled {official} from the registry in {time.monotonic() - t0:.1f}s",
                ["deb.debian.org"],
            )
        except Exception as exc:
            if prefer == "official":
                raise ImageError(f"cannot pull {official}: {short_error(exc)}") from exc
            reason = f"no registry reachable ({short_error(exc)})"
    else:
        reason = "debootstrap requested"
    img = make_base(c, release, mirrors, bt, progress)
    where = (
        "the host's apt sources"
        if mirrors.from_host
        else "a default: the host has no Debian apt source"
    )
    return Base(
        bt,
        img.id,
        "debootstrap",
        f"{reason}: built {bt} offline with debootstrap from {mirrors.main} ({where})",
        mirrors.hosts,
    )


def make_base(c, release: str, mirrors: Mirrors, tag: str, progress: Progress = _quiet):
    """debootstrap a minbase rootfs of `release` and import it as `tag`."""
    if not shutil.which("debootstrap"):
        raise ImageError(
            "no registry and no debootstrap to build a base image offline "
            "(apt-get install debootstrap; bash scripts/setup.sh does)"
        )
    root = Path(tempfile.mkdtemp(prefix=f"vpnlab-rootfs-{release}-", dir="/var/tmp"))
    try:
        argv = ["debootstrap", "--variant=minbase", "--components=main"]
        if any(uri.startswith("https:") for uri, _ in mirrors.suites):
            argv.append("--include=ca-certificates")
        argv += [release, str(root), mirrors.main]
        progress(f"debootstrap --variant=minbase {release} from {mirrors.main}", transient=True)
        t0 = time.monotonic()
        _run_streamed(argv, progress, DEBOOTSTRAP_TIMEOUT)
        _trim_rootfs(root, release, mirrors)
        progress(f"debootstrap {release}: {time.monotonic() - t0:.1f}s")
        progress(f"importing the rootfs as {tag}", transient=True)
        t0 = time.monotonic()
        repo, _, tg = tag.partition(":")
        changes = [
            f'LABEL {LABEL}="1" {KIND_LABEL}="base" {BASE_LABEL}="{release}" '
            f'vpnlab.base.mirror="{mirrors.main}"',
            'ENV PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
            'CMD ["/bin/bash"]',
        ]
        _import_rootfs(c, root, repo, tg, changes)
        img = image_or_none(c, tag)
        if img is None:
            raise ImageError(f"docker import of {root} made no image {tag}")
        progress(
            f"docker import {tag}: {time.monotonic() - t0:.1f}s, "
            f"{img.attrs.get('Size', 0) / 1e6:.0f} MB"
        )
        return img
    finally:
        _remove_rootfs(root)


def _import_rootfs(c, root: Path, repo: str, tag: str, changes: list[str]) -> None:
    """`tar -c root | docker import`: the SDK's APIClient.import_image, the tar streamed in."""
    import docker.errors

    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-c", "."],
        stdout=subprocess.PIPE,
    )
    try:
        out = c.api.import_image(
            src=_chunks(tar.stdout), repository=repo, tag=tag, changes=changes, stream_src=True
        )
    except BaseException as exc:
        tar.kill()  # it may be blocked on a pipe nobody reads any more
        tar.wait()
        if isinstance(exc, docker.errors.APIError):
            raise ImageError(f"docker import of {root} failed: {short_error(exc)}") from exc
        raise
    finally:
        assert tar.stdout
        tar.stdout.close()
    if tar.wait(timeout=60) != 0:
        raise ImageError(f"tar of {root} failed (exit {tar.returncode})")
    if error := _stream_error(out):
        raise ImageError(f"docker import of {root} failed: {error}")


def _stream_error(text: str) -> str | None:
    """The first error in a JSON-lines answer of the engine (an import can fail after 200 OK)."""
    for line in (text or "").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("error"):
            return " ".join(str(msg["error"]).split())[:200]
    return None


def _chunks(stream, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _run_streamed(argv: list[str], progress: Progress, timeout: float) -> None:
    tail: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        watchdog = threading.Timer(timeout, proc.kill)  # also when it hangs without output
        watchdog.start()
        try:
            assert proc.stdout
            for line in proc.stdout:
                line = line.rstrip()
                tail = [*tail, line][-15:]
                progress(line, transient=True)
            proc.wait()
        finally:
            expired = (
                not watchdog.is_alive() and proc.returncode not in (0, None) and proc.returncode < 0
            )
            watchdog.cancel()
    if expired:
        raise ImageError(f"{argv[0]} took more than {timeout:g}s and was killed")
    if proc.returncode != 0:
        raise ImageError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def _trim_rootfs(root: Path, release: str, mirrors: Mirrors) -> None:
    """The host's Debian sources (release substituted) in, caches and host leftovers out."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(mirrors.sources(release))
    for rel in ("etc/hostname", "etc/resolv.conf"):  # docker provides both per container
        (root / rel).unlink(missing_ok=True)
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (root / d).glob("*"):
            if p.is_file():
                p.unlink()
    for p in (root / "var/cache/apt").glob("*.bin"):
        p.unlink()
    # Slim as the official -slim images are: no docs (copyrights stay), man pages, locales,
    # now and for every package installed later.
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/vpnlab-slim").write_text(
        "".join(f"{rule}\n" for rule in SLIM_DPKG_RULES)
    )
    for d in (
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "usr/share/lintian",
    ):
        for p in sorted((root / d).rglob("*"), reverse=True):
            if p.name == "copyright" and d == "usr/share/doc":
                continue
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[4] for line in lines]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


def _remove_rootfs(root: Path) -> None:
    """Delete a scratch rootfs, unmounting what a failed debootstrap may have left (/proc...)."""
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if _mounts_under(root):
        raise ImageError(f"{root} still has mounts; not deleting it")
    shutil.rmtree(root, ignore_errors=True)


def build(
    release: str, progress: Progress = _quiet, *, base: str = "auto", context: Path | None = None
) -> str:
    """The node image for `release`, built only if no image with the same inputs exists."""
    if release not in RELEASES:
        raise ImageError(f"unknown release {release!r} (one of {', '.join(RELEASES)})")
    context = context or shipped(IMAGES)
    c = client(timeout=BUILD_TIMEOUT)
    with host_lock("images"):  # setup.sh and a developer may race
        b = resolve_base(c, release, progress, prefer=base)
        progress(f"base: {b.ref} ({b.source}) — {b.why}")
        build_args = {"BASE": b.ref}
        tag = node_tag(release, context_digest(context), build_args, b.image_id)
        alias = f"{NODE_REPO}:{release}"
        if (img := image_or_none(c, tag)) is not None:
            if alias not in img.tags:
                img.tag(NODE_REPO, release)
            progress(f"{tag} is up to date")
            return tag
        hosts = extra_hosts(b.apt_hosts, _read(HOSTS_FILE))
        if hosts:
            progress(
                "apt mirror passed to the build from /etc/hosts (--add-host): "
                + ", ".join(f"{n}:{a}" for n, a in hosts.items())
            )
        elif b.apt_hosts:
            progress(
                f"apt mirror {', '.join(b.apt_hosts)}: not in /etc/hosts, "
                "the build resolves it through the DNS server Docker gives it"
            )
        t0 = time.monotonic()
        labels = {
            LABEL: "1",
            KIND_LABEL: "node",
            "vpnlab.release": release,
            "vpnlab.base.image": b.ref,
            "vpnlab.base.source": b.source,
            "vpnlab.inputs": tag.rsplit("-", 1)[1],
        }
        image_id = _docker_build(c, context, tag, build_args, labels, hosts, progress)
        c.images.get(image_id).tag(NODE_REPO, release)
        size = c.images.get(image_id).attrs.get("Size", 0) / 1e6
        versions = image_versions(c, tag)
        progress(
            f"docker build {tag}: {time.monotonic() - t0:.1f}s, {size:.0f} MB; "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
        )
        _check_versions(release, versions, progress)
        _prune_superseded(c, release, keep=image_id, progress=progress)
        return tag


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _docker_build(
    c,
    context: Path,
    tag: str,
    build_args: dict[str, str],
    labels: dict[str, str],
    hosts: dict[str, str],
    progress: Progress,
) -> str:
    """The classic builder through the API (the SDK has no BuildKit): stream its steps."""
    import docker.errors

    image_id = None
    tail: list[str] = []
    try:
        stream = c.api.build(
            path=str(context),
            dockerfile="Dockerfile",
            tag=tag,
            buildargs=build_args,
            labels=labels,
            extra_hosts=hosts or None,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(
                    f"docker build of {tag} failed: {chunk['error'].strip()}\n" + "\n".join(tail)
                )
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            for line in chunk.get("stream", "").splitlines():
                if line.strip():
                    tail = [*tail, line][-20:]
                    progress(line.strip(), transient=True)
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build of {tag} failed: {short_error(exc)}") from exc
    if image_id is None:
        img = image_or_none(c, tag)
        if img is None:
            raise ImageError(f"docker build of {tag} produced no image:\n" + "\n".join(tail))
        image_id = img.id
    return image_id


VERSIONS_FILE = "/etc/vpnlab-image-versions"


def image_versions(c, image: str) -> dict[str, str]:
    """Package versions recorded at build time, read from a created (never started) container."""
    import io
    import tarfile

    box = c.containers.create(image, command=["true"], labels={LABEL: "1"})
    try:
        bits, _ = box.get_archive(VERSIONS_FILE)
        data = b"".join(bits)
    except Exception:
        return {}
    finally:
        box.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        member = tf.getmembers()[0]
        f = tf.extractfile(member)
        text = f.read().decode() if f else ""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _check_versions(release: str, versions: dict[str, str], progress: Progress) -> None:
    want = RELEASES[release]
    for pkg, prefix in (("strongswan-charon", want.strongswan), ("frr", want.frr)):
        got = versions.get(pkg, "?")
        if not got.split(":", 1)[-1].startswith(prefix):
            progress(f"[warning] {release}: {pkg} {got}, expected {prefix}x")


def _prune_superseded(c, release: str, keep: str, progress: Progress) -> None:
    """Untag older node images of this release (one in use by a container stays)."""
    import docker.errors

    for img in c.images.list(filters={"label": [f"{LABEL}=1", f"vpnlab.release={release}"]}):
        if img.id == keep:
            continue
        for t in img.tags:
            try:
                c.images.remove(t)
                progress(f"removed superseded {t}")
            except docker.errors.APIError:
                pass


def list_images() -> list[dict]:
    """vpnlab's images (label vpnlab=1): kind, release, tags, size, versions."""
    c = client()
    rows = []
    for img in c.images.list(filters={"label": f"{LABEL}=1"}):
        labels = img.labels or {}
        kind = labels.get(KIND_LABEL, "?")
        release = labels.get("vpnlab.release") or labels.get(BASE_LABEL, "?")
        rows.append(
            {
                "kind": kind,
                "release": release,
                "id": img.short_id.split(":")[-1],
                "tags": sorted(img.tags),
                "size_mb": round(img.attrs.get("Size", 0) / 1e6, 1),
                "created": img.attrs.get("Created", "")[:19].replace("T", " "),
                "base": labels.get("vpnlab.base.image", labels.get("vpnlab.base.mirror", "")),
                "versions": image_versions(c, img.id) if kind == "node" else {},
            }
        )
    return sorted(rows, key=lambda r: (r["kind"] != "node", r["release"], r["created"]))
