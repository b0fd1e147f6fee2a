"""Debian's archive as the host reaches it: the host's apt sources (one-line and deb822), its
mirrors for the node images' base, and the /etc/hosts entries a build must be given."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

FALLBACK_MIRROR = "http://deb.debian.org/debian"
SECURITY_FALLBACK = "http://deb.debian.org/debian-security"
SUITE_SUFFIXES = ("", "-updates", "-security")  # suites carried over from the host's sources


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    types: tuple[str, ...] = ("deb",)


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822 `.sources` file (stanzas of `Key: value`, continuation lines)."""
    entries: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            if not sep:
                key = None
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no" or "uris" not in fields:
            continue
        for uri in fields["uris"].split():
            entries.append(
                AptSource(
                    uri.rstrip("/"),
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                    tuple(fields.get("types", "deb").split()),
                )
            )
    return entries


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a one-line `sources.list`: `deb [options] URI SUITE COMPONENT...`."""
    entries: list[AptSource] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # drop [arch=... signed-by=...]
        words = line.split()
        if len(words) >= 3 and words[0] in ("deb", "deb-src"):
            entries.append(
                AptSource(words[1].rstrip("/"), (words[2],), tuple(words[3:]), (words[0],))
            )
    return entries


def host_apt_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every entry of the host's /etc/apt/sources.list and sources.list.d/*.{list,sources}."""
    etc = root / "etc/apt"
    entries: list[AptSource] = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if path.suffix == ".sources":
            entries += parse_deb822(text)
        elif path.suffix == ".list" or path.name == "sources.list":
            entries += parse_one_line(text)
    return entries


def host_codename(root: Path = Path("/")) -> str | None:
    try:
        text = (root / "etc/os-release").read_text()
    except OSError:
        return None
    m = re.search(r"^VERSION_CODENAME=\"?([a-z]+)\"?$", text, re.M)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Mirrors:
    """Debian's archive as the host reaches it, as (URI, suite suffix) pairs."""

    main: str
    suites: tuple[tuple[str, str], ...]  # (uri, ""), (uri, "-updates"), (sec, "-security")
    from_host: bool = True

    def sources(self, release: str) -> str:
        """A deb822 debian.sources for `release` (main component only)."""
        by_uri: dict[str, list[str]] = {}
        for uri, suffix in self.suites:
            by_uri.setdefault(uri, []).append(release + suffix)
        return "\n".join(
            f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            for uri, suites in by_uri.items()
        )

    @property
    def hosts(self) -> list[str]:
        return sorted({urlparse(uri).hostname or "" for uri, _ in self.suites} - {""})


def debian_mirrors(entries: list[AptSource], codename: str | None) -> Mirrors:
    """The entries that serve the host's own Debian release (its codename and -updates/-security
    suites); third-party repositories (their own suite names) are left out."""
    suites: list[tuple[str, str]] = []
    main = None
    if codename:
        for e in entries:
            if "deb" not in e.types or "main" not in e.components:
                continue
            for suite in e.suites:
                suffix = suite[len(codename) :] if suite.startswith(codename) else None
                if suffix in SUITE_SUFFIXES and (e.uri, suffix) not in suites:
                    suites.append((e.uri, suffix))
                    if suffix == "" and main is None:
                        main = e.uri
    if main is None:
        return Mirrors(
            FALLBACK_MIRROR,
            (
                (FALLBACK_MIRROR, ""),
                (FALLBACK_MIRROR, "-updates"),
                (SECURITY_FALLBACK, "-security"),
            ),
            from_host=False,
        )
    return Mirrors(main, tuple(suites))


def hosts_entry(name: str, text: str) -> str | None:
    """The address /etc/hosts (its text) gives `name`, first match wins, as the resolver does."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and name.lower() in (w.lower() for w in words[1:]):
            return words[0]
    return None


def extra_hosts(names: list[str], hosts_text: str) -> dict[str, str]:
    """--add-host entries for the mirror names the host resolves through /etc/hosts."""
    found = {n: hosts_entry(n, hosts_text) for n in names}
    return {n: a for n, a in found.items() if a}
