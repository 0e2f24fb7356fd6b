"""CUDA paths: training on --device cuda and parity on onnxruntime's CUDA provider.

Both skip cleanly where no CUDA device is present.
"""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from curvae.runtime import CurveModel

pytestmark = pytest.mark.gpu

needs_torch_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
needs_ort_cuda = pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                                    reason="this onnxruntime build has no CUDAExecutionProvider")


@needs_torch_cuda
def test_training_on_cuda_completes_and_exports(tmp_path):
    from conftest import small_config

    from curvae.training.export_run import export_run
    from curvae.training.loop import train

    s = train(small_config(device="cuda"), tmp_path / "run")
    assert s["status"] == "complete" and s["device"].startswith("cuda")
    export_run(tmp_path / "run", tmp_path / "model")


@needs_ort_cuda
def test_cuda_provider_parity(run_dir, bundle_dir):
    from curvae.training.export_run import check_against_run

    rows = check_against_run(bundle_dir, run_dir, providers=["CUDAExecutionProvider"])
    assert rows and all(r.provider == "CUDAExecutionProvider" for r in rows)
    assert max(r.max_abs for r in rows) <= 1e-4


@needs_ort_cuda
def test_strict_cuda_really_runs_on_cuda(bundle_dir, beta_targets):
    model = CurveModel.load(bundle_dir, providers="cuda", strict=True)
    assert model.providers["decoder"][0] == "CUDAExecutionProvider"
    cpu = CurveModel.load(bundle_dir, providers="cpu")
    np.testing.assert_allclose(model.encode(beta_targets), cpu.encode(beta_targets), atol=1e-4)
