"""The ``curvae`` command line: each command parses options, calls one library function, prints.

One module per group of commands: ``train`` (train, export), ``graphs`` (check, info, encode, decode,
sample), ``fit``, ``apps`` (report, explore, demo); ``common`` holds the group and what they share.
"""

from curvae.cli import apps, fit, graphs, train  # noqa: F401  (importing them registers their commands)
from curvae.cli.common import main

__all__ = ["main"]
