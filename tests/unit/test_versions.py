"""The opset / IR / onnxruntime tables, and the version check that runs before any session."""

from pathlib import Path

import onnx.helper
import onnxruntime
import pytest

from curvae.core.errors import MissingRuntimeError
from curvae.runtime import CurveModel
from curvae.runtime.bundle.format import read_manifest
from curvae.runtime.bundle.versions import (
    IR_FOR_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    check_onnxruntime,
    min_onnxruntime,
    parse_version,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("opset", range(MIN_OPSET, MAX_OPSET + 1))
def test_ir_table_is_onnx_s_own_with_the_ir4_floor(opset):
    onnx_min = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
    assert IR_FOR_OPSET[opset] == max(4, onnx_min)


@pytest.mark.parametrize("opset, ort", [(7, "1.0"), (11, "1.0"), (13, "1.6"), (17, "1.12"), (18, "1.14"),
                                        (19, "1.15"), (20, "1.17"), (21, "1.18"), (22, "1.21"), (23, "1.23")])
def test_oldest_onnxruntime_per_opset(opset, ort):
    assert min_onnxruntime(opset, IR_FOR_OPSET[opset]) == ort


def test_ir_version_can_raise_the_need():
    # The exporter's old default: opset 18 stamped with IR 10 needed onnxruntime 1.18.
    assert min_onnxruntime(18, 10) == "1.18"


@pytest.mark.parametrize("text, want", [("1.18.0", (1, 18, 0)), ("1.20.0.dev20240101", (1, 20, 0)),
                                        ("1.17.1+cu118", (1, 17, 1)), ("1.9", (1, 9, 0))])
def test_parse_version(text, want):
    assert parse_version(text) == want


def test_check_names_both_versions_and_a_fix():
    check_onnxruntime("1.18.0", "1.18", what="bundle")
    with pytest.raises(MissingRuntimeError, match=r"bundle needs onnxruntime >= 1.18 but 1.15.0 is installed; "
                                                  r"upgrade .*onnxruntime>=1.18.* --opset 18` runs on onnxruntime "
                                                  r">= 1.14, --opset 13 on >= 1.6"):
        check_onnxruntime("1.15.0", "1.18", what="bundle")


def test_previous_format_bundle_still_loads_and_its_need_is_derived():
    old = FIXTURES / "golden-1.0"
    m = read_manifest(old)
    assert (m.format_version, m.ir_version) == ("1.0", 10)
    assert m.min_onnxruntime == "1.18"  # not recorded in format 1.0: derived from opset 18, IR 10
    assert CurveModel.load(old).decode([[0.0, 0.0]]).shape == (1, 100)


def test_too_old_onnxruntime_is_refused_before_any_session(monkeypatch):
    import curvae.runtime.model as model_mod

    def no_session(*a, **k):
        raise AssertionError("a session was created")

    monkeypatch.setattr(onnxruntime, "__version__", "1.13.1")
    monkeypatch.setattr(model_mod, "make_session", no_session)
    with pytest.raises(MissingRuntimeError, match=r"golden' \(opset 18, IR version 8\) needs onnxruntime >= 1.14 "
                                                  r"but 1.13.1 is installed"):
        CurveModel.load(FIXTURES / "golden")
