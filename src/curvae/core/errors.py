"""One exception hierarchy for every user-facing mistake.

Messages name the value, the rule and the fix, so the CLI can print them as
one line.
"""

from __future__ import annotations


class CurvaeError(Exception):
    """Base class of every error curvae raises for a user mistake."""


class InputError(CurvaeError, ValueError):
    """Curves, codes or options that break a documented rule."""


class BadRowsError(InputError):
    """Some rows of the input cannot be used; ``rows`` holds their indices (in the whole set, not the chunk)."""

    def __init__(self, message: str, rows=()) -> None:
        super().__init__(message)
        self.rows = tuple(int(r) for r in rows)

    def __reduce__(self):  # keeps ``rows`` when the error crosses processes (Dask workers)
        return (type(self), (str(self), self.rows))


class ClusterError(CurvaeError):
    """A Dask cluster could not be reached or started, or a job on it failed for a reason of its own."""


class DataFileError(InputError):
    """A data file that is missing, unreadable or malformed."""


class BundleError(CurvaeError):
    """A model bundle that is missing, corrupt, inconsistent or unsupported."""


class ProviderError(CurvaeError):
    """An onnxruntime execution provider that is unknown or unavailable."""


class MissingRuntimeError(CurvaeError):
    """No usable onnxruntime build is installed, or it is older than a bundle needs."""


class RunError(CurvaeError):
    """A training run folder that is missing or inconsistent."""


class TrainingError(CurvaeError):
    """Training that cannot go on (bad options, a non-finite loss)."""


class ExportError(CurvaeError):
    """An export that was refused (parity over tolerance, a random op)."""


class OutputExistsError(CurvaeError):
    """An output path that already exists and would be overwritten."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message, or its type name when the message is empty.

    Third-party errors (onnxruntime, torch, onnx) often carry multi-line
    messages; curvae quotes only their first line, cut at ``limit``.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
