"""Image tags derived from their inputs, so an unchanged image is never rebuilt."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lab.runtime.docker.apt_sources import Mirrors

NODE_REPO = "vpnlab-node"
BASE_REPO = "vpnlab-base"
BASE_RECIPE = "debootstrap minbase v2"  # change it when the base recipe changes


def context_digest(directory: Path) -> str:
    """A hash of every file in the build context (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def inputs_digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def node_tag(release: str, context: str, build_args: dict[str, str], base_id: str) -> str:
    """The node image's tag: a function of the build context, the build args and the base."""
    return f"{NODE_REPO}:{release}-{inputs_digest(context, build_args, base_id)[:12]}"


def base_tag(release: str, mirrors: Mirrors) -> str:
    """The debootstrap base's tag: a function of the recipe, the release and the sources."""
    digest = inputs_digest(BASE_RECIPE, release, mirrors.main, mirrors.sources(release))
    return f"{BASE_REPO}:{release}-{digest[:12]}"
