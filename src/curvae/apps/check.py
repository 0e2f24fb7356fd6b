"""``curvae check``: every integrity check of a bundle, where its nodes run, and (with a run) its parity."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from curvae.core.errors import CurvaeError
from curvae.io.files import placement_summary
from curvae.runtime.bundle.extras import full_check
from curvae.runtime.bundle.records import Variant
from curvae.runtime.engine.providers import ProviderSpec
from curvae.runtime.model import CurveModel


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_bundle` found; ``lines()`` is what ``curvae check`` prints."""

    bundle: str
    checker: str  # what the onnx.checker step did
    min_onnxruntime: str
    placement: dict[str, str]  # graph -> "7 of 7 nodes on CPUExecutionProvider"
    parity_table: str = ""  # with a run: provider × graph × output × batch
    parity_rows: int = 0
    parity_worst: float = 0.0
    parity_passed: bool = True
    tolerance: str = ""
    warnings: tuple[str, ...] = ()  # facts the user should act on that do not fail the check

    def lines(self) -> list[str]:
        out = [f"bundle {self.bundle}: manifest, file set, sha256, opsets and run ids OK; {self.checker}; "
               f"needs onnxruntime >= {self.min_onnxruntime}"]
        out += [f"{graph} nodes executed: {line}" for graph, line in self.placement.items()]
        if self.parity_rows:
            out.append(self.parity_table)
            if self.parity_passed:
                out.append(f"parity OK on {self.parity_rows} rows: max abs {self.parity_worst:.2e} "
                           f"({self.tolerance})")
        out += [f"warning: {w}" for w in self.warnings]
        return out

    def verdict(self) -> None:
        """Raise :class:`CurvaeError` when the parity re-run failed."""
        if not self.parity_passed:
            raise CurvaeError(f"parity failed: max abs {self.parity_worst:.3g} is over the bundle's tolerance "
                              f"({self.tolerance}); re-export the bundle from its run")


def _variant_warnings(variants) -> tuple[str, ...]:
    return tuple(
        f"the {name} variant was quantised u8×s8 before curvae recorded its int8 scheme: on x86 CPUs without "
        f"VNNI (AVX2 only) its sums may saturate, and its error may exceed the recorded "
        f"{rec.max_abs.get('x_hat', float('nan')):.3g}; re-export it with --quantize int8"
        for name, rec in sorted(variants.items()) if name == "int8" and not rec.scheme)


def check_bundle(
    bundle: str | os.PathLike[str],
    *,
    run: str | os.PathLike[str] | None = None,
    providers: str | Sequence[ProviderSpec] | None = "auto",
    strict: bool = False,
    variant: Variant | None = None,
) -> CheckReport:
    """Verify a bundle: everything :meth:`CurveModel.load` checks, ``onnx.checker``'s full check when onnx
    is installed, and where each node runs; with ``run``, parity against the run's weights on every
    available provider (needs the ``[train]`` extra).
    """
    model = CurveModel.load(bundle, providers=providers, strict=strict, variant=variant)
    m = model.manifest
    report = dict(bundle=str(bundle), checker=full_check(bundle), min_onnxruntime=m.runtime_needed(variant),
                  placement=placement_summary(model.placement()), warnings=_variant_warnings(m.variants))
    if run is None:
        return CheckReport(**report)
    from curvae.export.parity import format_table
    from curvae.training.export_run import check_against_run

    rows = check_against_run(bundle, run)
    return CheckReport(**report, parity_table=format_table(rows), parity_rows=len(rows),
                       parity_worst=max(r.max_abs for r in rows), parity_passed=all(r.passed for r in rows),
                       tolerance=f"atol {m.parity.atol}, rtol {m.parity.rtol}")
