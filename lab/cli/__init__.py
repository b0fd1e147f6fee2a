"""`vpnlab`: a thin command line over the library; each command calls one function.

One module per command group; ``views`` draws what they show.
"""

from lab.cli import (  # noqa: F401
    capture,
    conformance,
    exercise,
    faults,
    forms,
    graph,
    images,
    imports,
    lifecycle,
    measure,
    report,
)
from lab.cli.common import main

__all__ = ["main"]
