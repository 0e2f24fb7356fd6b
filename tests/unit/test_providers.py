import onnxruntime as ort
import pytest

from curvae.core.errors import ProviderError
from curvae.runtime.providers import available_providers, resolve_providers


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
