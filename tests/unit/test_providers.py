import onnxruntime as ort
import pytest

from curvae.core.errors import ProviderError
from curvae.runtime.engine.providers import available_providers, resolve_providers


def test_auto_takes_every_compute_provider_with_cpu_last():
    got = resolve_providers("auto")
    assert got[-1] == "CPUExecutionProvider"
    assert "AzureExecutionProvider" not in got
    assert set(got) <= set(ort.get_available_providers())
    assert resolve_providers(None) == got


def test_aliases_and_comma_lists():
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert resolve_providers("CPUExecutionProvider, cpu") == ["CPUExecutionProvider"] * 2


def test_options_pass_through():
    assert resolve_providers([("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]) == [
        ("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here")
def test_unavailable_provider_lists_the_available_ones():
    with pytest.raises(ProviderError, match=r"'cuda' is not available .*available providers: .*CPUExecutionProvider"):
        resolve_providers("cuda")


def test_unknown_provider_and_empty_request():
    with pytest.raises(ProviderError, match="'banana' is not available"):
        resolve_providers(["banana"])
    with pytest.raises(ProviderError, match="no provider requested"):
        resolve_providers(" , ")


def test_available_providers_order_puts_accelerators_first():
    avail = available_providers()
    assert avail.index("CPUExecutionProvider") == len(avail) - 1


def test_strict_cpu_runs_on_cpu(bundle_dir):
    from curvae.runtime import CurveModel

    m = CurveModel.load(bundle_dir, providers="cpu", strict=True)
    assert m.providers == {"encoder": ["CPUExecutionProvider"], "decoder": ["CPUExecutionProvider"]}


FAKE = ["AzureExecutionProvider", "CPUExecutionProvider", "MyAcceleratorExecutionProvider", "CUDAExecutionProvider",
        "OpenVINOExecutionProvider", "TensorrtExecutionProvider"]


@pytest.fixture
def many_providers(monkeypatch):
    """This build pretends to offer accelerators, so ordering, aliases and strict mode are really exercised."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(FAKE))


def test_auto_orders_a_rich_build_accelerators_first_unknown_before_cpu(many_providers):
    assert resolve_providers("auto") == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                         "OpenVINOExecutionProvider", "MyAcceleratorExecutionProvider",
                                         "CPUExecutionProvider"]


def test_aliases_resolve_against_the_build(many_providers):
    assert resolve_providers("trt, cuda,openvino,cpu") == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                           "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ProviderError, match=r"'rocm' is not available .*MyAcceleratorExecutionProvider"):
        resolve_providers("rocm")


def test_strict_refuses_a_provider_that_cannot_run_the_graph(many_providers, bundle_dir):
    from curvae.runtime import CurveModel

    # onnxruntime itself has no CUDA here: without fallback the session cannot be built.
    with pytest.raises(ProviderError, match=r"--strict: CUDAExecutionProvider cannot run the whole encoder graph"):
        CurveModel.load(bundle_dir, providers="cuda", strict=True)


def test_without_strict_the_fallback_is_visible_in_the_placement(many_providers, bundle_dir):
    from curvae.runtime import CurveModel

    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        m = CurveModel.load(bundle_dir, providers="cuda,cpu")
    assert {g: list(p) for g, p in m.placement().items()} == {"encoder": ["CPUExecutionProvider"],
                                                             "decoder": ["CPUExecutionProvider"]}
