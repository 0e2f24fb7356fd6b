"""Torch-free runtime: load a bundle, encode, decode, sample and fit (with uncertainty).

Depends only on numpy, scipy and an onnxruntime build (imported on first use);
it never imports torch.
"""

from curvae.core.errors import (
    BundleError,
    CurvaeError,
    DataFileError,
    ExportError,
    InputError,
    MissingRuntimeError,
    OutputExistsError,
    ProviderError,
    RunError,
    TrainingError,
)
from curvae.runtime.bundle import FORMAT_VERSION, Manifest, read_bundle, read_manifest
from curvae.runtime.curves_io import CurveFile, load_curves
from curvae.runtime.fit import FIT_METHODS, MODEL_FIT_METHODS, FitResult
from curvae.runtime.model import CurveModel
from curvae.runtime.observations import (
    Observations,
    on_model_grid,
    on_own_grids,
    on_shared_grid,
)
from curvae.runtime.providers import available_providers, resolve_providers

__all__ = [
    "FIT_METHODS",
    "FORMAT_VERSION",
    "MODEL_FIT_METHODS",
    "BundleError",
    "CurvaeError",
    "CurveFile",
    "CurveModel",
    "DataFileError",
    "ExportError",
    "FitResult",
    "InputError",
    "Manifest",
    "MissingRuntimeError",
    "Observations",
    "OutputExistsError",
    "ProviderError",
    "RunError",
    "TrainingError",
    "available_providers",
    "load_curves",
    "on_model_grid",
    "on_own_grids",
    "on_shared_grid",
    "read_bundle",
    "read_manifest",
    "resolve_providers",
]
