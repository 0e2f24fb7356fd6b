"""Torch-free runtime: load a bundle, encode, decode, sample and fit.

Depends only on numpy, scipy and onnxruntime; it never imports torch.
"""

from curvae.core.errors import (
    BundleError,
    CurvaeError,
    DataFileError,
    ExportError,
    InputError,
    OutputExistsError,
    ProviderError,
    RunError,
    TrainingError,
)
from curvae.runtime.bundle import FORMAT_VERSION, Manifest, read_bundle, read_manifest
from curvae.runtime.curves_io import CurveFile, load_curves
from curvae.runtime.fit import FIT_METHODS, FitResult
from curvae.runtime.model import CurveModel
from curvae.runtime.providers import available_providers, resolve_providers

__all__ = [
    "FIT_METHODS",
    "FORMAT_VERSION",
    "BundleError",
    "CurvaeError",
    "CurveFile",
    "CurveModel",
    "DataFileError",
    "ExportError",
    "FitResult",
    "InputError",
    "Manifest",
    "OutputExistsError",
    "ProviderError",
    "RunError",
    "TrainingError",
    "available_providers",
    "load_curves",
    "read_bundle",
    "read_manifest",
    "resolve_providers",
]
