"""Torch-free runtime: load a bundle, encode, decode, sample and fit (with uncertainty).

Depends only on numpy, scipy and an onnxruntime build (imported on first use);
it never imports torch. Its rooms:

- ``model``: :class:`CurveModel`, the facade: load, encode, decode, sample, fit;
- ``bundle``: the bundle format (manifest, records, graph scan, versions);
- ``engine``: onnxruntime sessions, providers, placement, the per-process session cache;
- ``fitting``: the LM engine, observations, uncertainty, MCMC and the fit orchestration;
- ``arrays``: the input checks every call runs.

Reading curves from files is :mod:`curvae.io` (``from curvae.io import load_curves``), one layer up.
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
from curvae.runtime.bundle.format import (
    FORMAT_VERSION,
    Manifest,
    read_bundle,
    read_manifest,
)
from curvae.runtime.engine.providers import available_providers, resolve_providers
from curvae.runtime.fitting.engine import FIT_METHODS, MODEL_FIT_METHODS, FitResult
from curvae.runtime.fitting.observations import (
    Observations,
    on_model_grid,
    on_own_grids,
    on_shared_grid,
)
from curvae.runtime.model import CurveModel

__all__ = [
    "FIT_METHODS",
    "FORMAT_VERSION",
    "MODEL_FIT_METHODS",
    "BundleError",
    "CurvaeError",
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
    "on_model_grid",
    "on_own_grids",
    "on_shared_grid",
    "read_bundle",
    "read_manifest",
    "resolve_providers",
]
