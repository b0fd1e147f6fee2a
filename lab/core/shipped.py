"""Data that ships with vpnlab: the topologies, the node image's build context, the provider
profiles and their customer templates, the training exercises, the import samples.

A built wheel carries them inside the package (``lab/_data/<name>``, put there by the build,
see pyproject.toml); a source checkout, editable installs included, has them at the
repository's top level. Both are found through the package's own resources.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

TOPOLOGIES, IMAGES, PROFILES = "topologies", "images", "profiles"
EXERCISES = "exercises"  # break/fix training: one folder per exercise
SAMPLES = "samples"  # inputs of `vpnlab import`: AWS configurations, customer configs


def shipped(name: str) -> Path:
    """The directory of shipped data ``name`` (``topologies``, ``images``, ``profiles``,
    ``exercises``, ``samples``)."""
    package = Path(str(resources.files("lab")))
    packaged = package / "_data" / name
    return packaged if packaged.is_dir() else package.parent / name


def topology_names() -> list[str]:
    """The shipped topologies, by name (file name without .yaml)."""
    return sorted(p.stem for p in shipped(TOPOLOGIES).glob("*.yaml"))


def find_topology(ref: str | Path) -> Path:
    """A topology file given by path, or by the name of a shipped one (``tray-bgp-ikev2``,
    with or without ``.yaml``); a path that exists wins. Unknown names come back as given,
    for the loader to report."""
    path = Path(ref)
    if path.exists() or path.is_absolute() or len(path.parts) > 1:
        return path
    candidate = shipped(TOPOLOGIES) / (path.name if path.suffix else f"{path.name}.yaml")
    return candidate if candidate.is_file() else path
