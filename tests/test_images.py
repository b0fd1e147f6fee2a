"""Node images: tag derivation, the host's apt mirror, /etc/hosts, and (with a Docker daemon)
the images that setup.sh builds."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import tarfile
from pathlib import Path
from unittest.mock import create_autospec

import docker
import docker.errors
import docker.models.images
import pytest

from lab.core.shipped import shipped
from lab.runtime.docker import apt_sources, engine, images, tags
from lab.runtime.docker.apt_sources import AptSource, Mirrors

HOST_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

THIRD_PARTY = """\
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/nodesource.gpg
"""


def _context(tmp_path: Path, dockerfile: str) -> Path:
    d = tmp_path / "ctx"
    d.mkdir(exist_ok=True)
    (d / "Dockerfile").write_text(dockerfile)
    return d


# --- tags -----------------------------------------------------------------------------------


def test_tag_is_stable_for_the_same_inputs(tmp_path):
    ctx = _context(tmp_path, "FROM x\nRUN true\n")
    first = tags.node_tag("bookworm", tags.context_digest(ctx), {"BASE": "b"}, "sha256:1")
    (ctx / "Dockerfile").touch()  # a newer mtime is not a new input
    again = tags.node_tag("bookworm", tags.context_digest(ctx), {"BASE": "b"}, "sha256:1")
    assert first == again
    assert re.fullmatch(r"vpnlab-node:bookworm-[0-9a-f]{12}", first)


def test_tag_changes_with_the_dockerfile_the_args_and_the_base(tmp_path):
    ctx = _context(tmp_path, "FROM x\nRUN true\n")
    args = {"BASE": "vpnlab-base:bookworm-1"}
    tag = tags.node_tag("bookworm", tags.context_digest(ctx), args, "sha256:1")
    variants = {
        tags.node_tag(
            "bookworm", tags.context_digest(ctx), {"BASE": "debian:bookworm-slim"}, "sha256:1"
        ),
        tags.node_tag("bookworm", tags.context_digest(ctx), args, "sha256:2"),
        tags.node_tag("trixie", tags.context_digest(ctx), args, "sha256:1"),
    }
    (ctx / "Dockerfile").write_text("FROM x\nRUN false\n")
    variants.add(tags.node_tag("bookworm", tags.context_digest(ctx), args, "sha256:1"))
    (ctx / "Dockerfile").write_text("FROM x\nRUN true\n")
    (ctx / "extra.conf").write_text("a file the Dockerfile may COPY")
    variants.add(tags.node_tag("bookworm", tags.context_digest(ctx), args, "sha256:1"))
    assert tag not in variants and len(variants) == 5


def test_build_arg_order_does_not_matter():
    a = tags.node_tag("bookworm", "c", {"A": "1", "B": "2"}, "id")
    b = tags.node_tag("bookworm", "c", {"B": "2", "A": "1"}, "id")
    assert a == b


def test_base_tag_follows_release_and_mirror():
    m = apt_sources.debian_mirrors(apt_sources.parse_deb822(HOST_SOURCES), "bookworm")
    other = Mirrors("http://mirror.example/debian", (("http://mirror.example/debian", ""),))
    assert tags.base_tag("bookworm", m) == tags.base_tag("bookworm", m)
    assert tags.base_tag("bookworm", m) != tags.base_tag("trixie", m)
    assert tags.base_tag("bookworm", m) != tags.base_tag("bookworm", other)
    assert tags.base_tag("trixie", m).startswith("vpnlab-base:trixie-")


def test_shipped_dockerfile_is_the_context():
    dockerfile = shipped("images") / "Dockerfile"
    assert dockerfile.is_file()
    text = dockerfile.read_text()
    assert "ARG BASE" in text and "FROM ${BASE}" in text
    for pkg in (
        "strongswan-charon",
        "strongswan-swanctl",
        "libstrongswan-standard-plugins",
        "libcharon-extra-plugins",
        "frr",
        "nftables",
        "iproute2",
        "tcpdump",
        "iperf3",
        "iputils-ping",
        "procps",
    ):
        assert re.search(rf"\s{re.escape(pkg)}\s", text), pkg
    assert "--no-install-recommends" in text


# --- apt sources and the mirror ------------------------------------------------------------


def test_deb822_sample_parses():
    entries = apt_sources.parse_deb822(HOST_SOURCES + "\n" + THIRD_PARTY)
    assert entries[0] == AptSource(
        "http://deb.debian.org/debian", ("bookworm", "bookworm-updates"), ("main",)
    )
    assert entries[1].uri == "http://deb.debian.org/debian-security"
    assert entries[2].suites == ("nodistro",)


def test_deb822_continuation_and_disabled_stanzas():
    text = (
        "Types: deb\nURIs: http://a.example/debian\n  http://b.example/debian/\n"
        "Suites: bookworm\nComponents: main contrib\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    entries = apt_sources.parse_deb822(text)
    assert [e.uri for e in entries] == ["http://a.example/debian", "http://b.example/debian"]


def test_one_line_sources_parse():
    text = (
        "# comment\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] http://m.example/debian/ "
        "bookworm main contrib\n"
        "deb-src http://m.example/debian bookworm main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    entries = apt_sources.parse_one_line(text)
    assert entries[0] == AptSource("http://m.example/debian", ("bookworm",), ("main", "contrib"))
    assert entries[1].types == ("deb-src",)
    assert entries[2].suites == ("cloud-sdk-bookworm",)


def test_mirrors_keep_debian_suites_and_drop_third_party():
    entries = apt_sources.parse_deb822(
        HOST_SOURCES + "\n" + THIRD_PARTY
    ) + apt_sources.parse_one_line(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
        "deb http://deb.debian.org/debian bookworm-backports main\n"
    )
    m = apt_sources.debian_mirrors(entries, "bookworm")
    assert m.from_host and m.main == "http://deb.debian.org/debian"
    assert m.suites == (
        ("http://deb.debian.org/debian", ""),
        ("http://deb.debian.org/debian", "-updates"),
        ("http://deb.debian.org/debian-security", "-security"),
    )
    assert m.hosts == ["deb.debian.org"]
    trixie = m.sources("trixie")
    assert "Suites: trixie trixie-updates\n" in trixie
    assert "URIs: http://deb.debian.org/debian-security\nSuites: trixie-security\n" in trixie
    assert "bookworm" not in trixie


def test_mirrors_fall_back_without_debian_sources():
    m = apt_sources.debian_mirrors(apt_sources.parse_deb822(THIRD_PARTY), "bookworm")
    assert not m.from_host and m.main == apt_sources.FALLBACK_MIRROR
    assert apt_sources.debian_mirrors([], None).main == apt_sources.FALLBACK_MIRROR


def test_host_sources_read_from_a_root(tmp_path):
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(HOST_SOURCES)
    (tmp_path / "etc/apt/sources.list.d/google.list").write_text(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    (tmp_path / "etc/os-release").write_text('PRETTY_NAME="Debian"\nVERSION_CODENAME=bookworm\n')
    entries = apt_sources.host_apt_sources(tmp_path)
    assert len(entries) == 3
    assert apt_sources.host_codename(tmp_path) == "bookworm"
    assert apt_sources.debian_mirrors(entries, "bookworm").main == "http://deb.debian.org/debian"


# --- /etc/hosts -----------------------------------------------------------------------------

HOSTS = """\
127.0.0.1 localhost
# 192.0.2.9 deb.debian.org   (commented out)
203.0.113.80  Deb.Debian.org debian-mirror   # the mirror
198.51.100.7 deb.debian.org
::1 localhost ip6-localhost
"""


def test_hosts_entry_lookup():
    assert apt_sources.hosts_entry("deb.debian.org", HOSTS) == "203.0.113.80"  # first one wins
    assert apt_sources.hosts_entry("debian-mirror", HOSTS) == "203.0.113.80"  # an alias
    assert apt_sources.hosts_entry("security.debian.org", HOSTS) is None
    assert apt_sources.hosts_entry("deb.debian.org", "") is None


def test_extra_hosts_only_for_names_in_hosts():
    assert apt_sources.extra_hosts(["deb.debian.org", "other.example"], HOSTS) == {
        "deb.debian.org": "203.0.113.80"
    }
    assert apt_sources.extra_hosts(["deb.debian.org"], "127.0.0.1 localhost\n") == {}


# --- the offline base's rootfs --------------------------------------------------------------


def test_trim_rootfs_sets_sources_and_slims(tmp_path):
    root = tmp_path / "rootfs"
    for rel, text in {
        "etc/apt/sources.list": "deb http://deb.debian.org/debian trixie main\n",
        "etc/hostname": "host\n",
        "etc/resolv.conf": "nameserver 10.0.0.1\n",
        "usr/share/doc/pkg/copyright": "c",
        "usr/share/doc/pkg/README": "r",
        "usr/share/man/man1/ls.1.gz": "m",
        "var/cache/apt/archives/a.deb": "d",
        "var/lib/apt/lists/x_Packages": "p",
        "var/cache/apt/pkgcache.bin": "b",
        "usr/bin/true": "t",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    m = apt_sources.debian_mirrors(apt_sources.parse_deb822(HOST_SOURCES), "bookworm")
    images._trim_rootfs(root, "trixie", m)
    assert not (root / "etc/apt/sources.list").exists()
    assert (root / "etc/apt/sources.list.d/debian.sources").read_text() == m.sources("trixie")
    assert (root / "usr/share/doc/pkg/copyright").exists()
    gone = (
        "etc/hostname",
        "etc/resolv.conf",
        "usr/share/doc/pkg/README",
        "usr/share/man/man1/ls.1.gz",
        "var/cache/apt/archives/a.deb",
        "var/lib/apt/lists/x_Packages",
        "var/cache/apt/pkgcache.bin",
    )
    assert not any((root / rel).exists() for rel in gone)
    assert (root / "usr/bin/true").exists()
    assert "path-exclude /usr/share/doc/*" in (root / "etc/dpkg/dpkg.cfg.d/vpnlab-slim").read_text()


# --- the offline base's import, against an autospecced Docker SDK ---------------------------
# Every SDK stand-in here is create_autospec'd from the installed docker package, so calling a
# method the SDK does not have (as make_base once called APIClient.importimage_or_none) fails
# the test instead of passing silently.


def _sdk_client():
    """A DockerClient stand-in: autospecced client, low-level API and image collection
    (`api` is set in DockerClient.__init__ and `images` is a property, so autospec alone
    leaves them out or unchecked)."""
    c = create_autospec(docker.DockerClient, instance=True)
    c.api = create_autospec(docker.APIClient, instance=True)
    c.images = create_autospec(docker.models.images.ImageCollection, instance=True)
    img = create_autospec(docker.models.images.Image, instance=True)
    img.attrs = {"Size": 30_000_000}
    c.images.get.return_value = img
    return c


def _fake_debootstrap(monkeypatch, seen: list[list[str]]):
    """debootstrap stands in: the argv is recorded and a few files written as the rootfs."""

    def run(argv, progress, timeout):
        seen.append(argv)
        root = Path(argv[-2])
        for rel in ("etc/os-release", "etc/apt/sources.list", "usr/bin/true"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(rel)

    real_which = shutil.which
    monkeypatch.setattr(
        images.shutil,
        "which",
        lambda name, *a, **k: (
            f"/usr/sbin/{name}" if name == "debootstrap" else real_which(name, *a, **k)
        ),
    )
    monkeypatch.setattr(images, "_run_streamed", run)


def _mirrors() -> Mirrors:
    return apt_sources.debian_mirrors(apt_sources.parse_deb822(HOST_SOURCES), "bookworm")


def test_make_base_imports_the_rootfs_through_import_image(monkeypatch):
    seen: list[list[str]] = []
    _fake_debootstrap(monkeypatch, seen)
    c = _sdk_client()
    got: dict[str, set[str]] = {}

    def engine_import(src=None, **kwargs):
        with tarfile.open(fileobj=io.BytesIO(b"".join(src))) as tf:  # what tar streamed in
            got["members"] = set(tf.getnames())
        return json.dumps({"status": "sha256:" + "0" * 64}) + "\r\n"

    c.api.import_image.side_effect = engine_import
    tag = tags.base_tag("bookworm", _mirrors())
    img = images.make_base(c, "bookworm", _mirrors(), tag)

    assert img is c.images.get.return_value
    c.images.get.assert_called_with(tag)
    c.api.import_image.assert_called_once()
    kwargs = c.api.import_image.call_args.kwargs
    repo, _, tg = tag.partition(":")
    assert (kwargs["repository"], kwargs["tag"]) == (repo, tg) == ("vpnlab-base", tg)
    assert kwargs["stream_src"] is True
    assert any(
        'vpnlab.base="bookworm"' in ch and 'vpnlab.kind="base"' in ch for ch in kwargs["changes"]
    )
    assert 'CMD ["/bin/bash"]' in kwargs["changes"]
    assert "./etc/apt/sources.list.d/debian.sources" in got["members"]  # the trimmed rootfs
    assert "./etc/apt/sources.list" not in got["members"]
    assert seen[0][:2] == ["debootstrap", "--variant=minbase"] and seen[0][-3] == "bookworm"
    assert not Path(seen[0][-2]).exists()  # the scratch rootfs is gone


@pytest.mark.parametrize(
    "failure",
    [
        docker.errors.APIError("500 Server Error: no space left on device"),
        json.dumps({"errorDetail": {"message": "no space left"}, "error": "no space left"}),
    ],
    ids=["api-error", "error-in-stream"],
)
def test_make_base_says_when_the_import_fails(monkeypatch, failure):
    seen: list[list[str]] = []
    _fake_debootstrap(monkeypatch, seen)
    c = _sdk_client()
    if isinstance(failure, Exception):
        c.api.import_image.side_effect = failure  # nobody reads the tar: it is killed
    else:

        def engine_import(src=None, **kwargs):  # 200 OK, then the error in the JSON stream
            b"".join(src)
            return failure

        c.api.import_image.side_effect = engine_import
    with pytest.raises(images.ImageError, match=r"docker import of .* failed: .*no space left"):
        images.make_base(c, "bookworm", _mirrors(), tags.base_tag("bookworm", _mirrors()))
    assert not Path(seen[0][-2]).exists()


# --- with a Docker daemon: the images setup.sh built ---------------------------------------

needs_docker = pytest.mark.skipif(
    not engine.daemon_available(), reason="no Docker daemon answers (setup.sh test starts one)"
)

EXPECT = {"bookworm": (r"5\.9\.\d+", r"8\.4\.\d+"), "trixie": (r"6\.0\.\d+", r"10\.\d+(\.\d+)?")}


@needs_docker
@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_node_image_runs_expected_versions(release):
    c = engine.client()
    img = engine.image_or_none(c, f"{tags.NODE_REPO}:{release}")
    if img is None:
        if release == "bookworm":
            pytest.fail("vpnlab-node:bookworm is missing: bash scripts/setup.sh test builds it")
        pytest.skip(f"no {release} image (vpnlab image build --release {release})")
    labels = img.labels
    assert labels["vpnlab"] == "1" and labels["vpnlab.release"] == release
    assert labels["vpnlab.kind"] == "node"
    # It is the image of today's Dockerfile on its base: the tag derivation agrees.
    base = engine.image_or_none(c, labels["vpnlab.base.image"])
    assert base is not None
    context = tags.context_digest(shipped("images"))
    want = tags.node_tag(release, context, {"BASE": labels["vpnlab.base.image"]}, base.id)
    assert want in img.tags, f"{release} image is stale: {img.tags} (want {want})"
    if labels["vpnlab.base.source"] == "debootstrap":
        assert base.labels["vpnlab.base"] == release and base.labels["vpnlab"] == "1"

    name = f"vpnlab-test-versions-{release}-{os.getpid()}"
    out = c.containers.run(
        img.id,
        [
            "sh",
            "-c",
            "/usr/lib/ipsec/charon --version; swanctl --help 2>&1 | head -1; "
            "vtysh --help 2>&1 | grep -i version; /usr/lib/frr/zebra --version | head -1",
        ],
        name=name,
        remove=True,
        labels={engine.LABEL: "1"},
        network_disabled=True,
    ).decode()
    swan, frr = EXPECT[release]
    assert re.search(rf"^(Linux )?strongSwan {swan}$", out, re.M), out  # 6.x: no "Linux"
    assert re.search(rf"^strongSwan {swan} swanctl$", out, re.M), out
    assert re.search(rf"Integrated shell for FRR \(version {frr}\)", out), out
    assert re.search(rf"^zebra version {frr}$", out, re.M), out
    assert not c.containers.list(all=True, filters={"name": name})  # the throwaway is gone


@needs_docker
def test_warm_build_is_a_no_op():
    """With the image present, build() only looks it up (setup.sh relies on that)."""
    c = engine.client()
    if engine.image_or_none(c, f"{tags.NODE_REPO}:bookworm") is None:
        pytest.skip("no bookworm image yet")
    before = {i.id for i in c.images.list(filters={"label": "vpnlab=1"})}
    notes: list[str] = []
    tag = images.build("bookworm", lambda text, transient=False: notes.append(text))
    assert any("up to date" in n for n in notes), notes
    assert engine.image_or_none(c, tag) is not None
    assert {i.id for i in c.images.list(filters={"label": "vpnlab=1"})} == before


@needs_docker
def test_cold_base_import_with_the_engine(monkeypatch):
    """The cold path (no base image yet) against the real engine, under a throwaway tag, so
    make_base's SDK import call runs on every test run that has Docker: the rootfs is a few
    files unless VPNLAB_COLD_BASE=1 (then a real debootstrap from the mirror)."""
    real = os.environ.get("VPNLAB_COLD_BASE") == "1"
    if real and not shutil.which("debootstrap"):
        pytest.skip("VPNLAB_COLD_BASE=1 but no debootstrap (apt-get install debootstrap)")
    if not real:
        _fake_debootstrap(monkeypatch, [])
    c = engine.client(timeout=images.BUILD_TIMEOUT)
    release = "bookworm"
    mirrors = apt_sources.debian_mirrors(apt_sources.host_apt_sources(), release)
    tag = f"vpnlab-coldtest-base:{release}-{secrets.token_hex(6)}"
    try:
        img = images.make_base(c, release, mirrors, tag)
        labels = c.images.get(tag).labels
        assert labels[images.BASE_LABEL] == release and labels[images.KIND_LABEL] == "base"
        assert labels[engine.LABEL] == "1"
        assert img.id == c.images.get(tag).id
    finally:
        if engine.image_or_none(c, tag) is not None:
            c.images.remove(tag)
    assert engine.image_or_none(c, tag) is None
