"""`vpnlab`: a thin command line over the library; each command calls one function.

One module per command group; ``views`` draws what they show.
"""

from lab.cli import faults, images, lifecycle  # noqa: F401 - each registers its commands
from lab.cli.common import main

__all__ = ["main"]
