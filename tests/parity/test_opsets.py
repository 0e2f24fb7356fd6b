"""Any opset 7..23 exports with the lowest IR version it needs, and the graphs still agree."""

import numpy as np
import pytest


@pytest.mark.parametrize("opset", [7, 13, 23])
def test_other_opsets_export_with_the_lowest_ir_and_pass_parity(run_dir, tmp_path, opset):
    from onnx.reference import ReferenceEvaluator

    from curvae.export import ExportConfig
    from curvae.runtime import CurveModel
    from curvae.runtime.bundle.scan import scan_model
    from curvae.runtime.bundle.versions import min_ir_version, min_onnxruntime
    from curvae.training.export_run import export_run

    res = export_run(run_dir, tmp_path / "m", config=ExportConfig(opset=opset))
    m = res.manifest
    assert (m.opset, m.ir_version) == (opset, min_ir_version(opset))
    assert m.min_onnxruntime == min_onnxruntime(opset, min_ir_version(opset))
    for f in ("encoder.onnx", "decoder.onnx"):
        facts = scan_model((tmp_path / "m" / f).read_bytes())
        assert (facts.opsets[""], facts.ir_version) == (opset, m.ir_version)
        assert "Split" not in facts.op_types
    model = CurveModel.load(tmp_path / "m")
    z = np.random.default_rng(opset).standard_normal((7, 2)).astype(np.float32)
    (ref,) = ReferenceEvaluator(str(tmp_path / "m" / "decoder.onnx")).run(None, {"z": z})
    np.testing.assert_allclose(model.decode(z), ref, atol=1e-5)
