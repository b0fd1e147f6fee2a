"""`vpnlab`: a thin command line over the library; each command calls one function.

One module per command group; ``views`` draws what they show.
"""

from lab.cli import conformance, faults, forms, graph, images, lifecycle, measure  # noqa: F401
from lab.cli.common import main

__all__ = ["main"]
