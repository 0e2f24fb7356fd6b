"""The capacity search's config and its ladder of candidate networks (torch-free: the CLI reads its choices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from curvae.core.errors import InputError

Preset = Literal["auto", "fast", "seed"]
#: ``curvae train --preset``: auto searches the network, fast is the ``fast`` candidate alone, seed the worked example.
PRESETS: tuple[str, ...] = get_args(Preset)
Candidate = Literal["fast", "deep2", "deep3"]
#: The ladder, from least to most capacity. ``fast`` is the recipe curvae trained before the search.
CANDIDATES: tuple[str, ...] = get_args(Candidate)
#: Each candidate's network (the rest of the model config is the user's): depth, activation, width.
NETWORKS: dict[str, dict[str, Any]] = {
    "fast": {"depth": 1, "activation": "relu", "hidden": 256},
    "deep2": {"depth": 2, "activation": "silu", "hidden": 256},
    "deep3": {"depth": 3, "activation": "silu", "hidden": 256},
}
#: Each candidate's curves per step, unless the user gives --batch-size. The deepest network gains most from
#: larger batches (damped oscillations: 0.85% of the spread at 32, 0.34% at 128), Beta log-PDFs lose at depth 2
#: (0.072% at 32, 0.147% at 128): docs/training-recipe.md.
BATCH_SIZES: dict[str, int] = {"fast": 32, "deep2": 32, "deep3": 128}
#: Wall-clock seconds the search may spend on training, when no --budget is given.
DEFAULT_BUDGET_SECONDS = 60.0
#: The demo's budget: on Beta log-PDFs the two smaller candidates fit in it, which keeps `make demo` under 45 s on
#: 2 cores (the third gains nothing there: docs/training-recipe.md).
DEMO_BUDGET_SECONDS = 30.0
#: A bigger candidate must lower the held-out fit residual by this share to be kept, and to grow further.
DEFAULT_MIN_GAIN = 0.05
#: Held-out curves each candidate is scored on (the first ones of the held-out split).
SCORE_CURVES = 500


@dataclass(frozen=True)
class SearchConfig:
    """How the capacity search runs; saved as ``search.json`` in the chosen run folder.

    The search trains the candidates of ``ladder`` in order, each with the full step budget, and stops growing
    when a candidate does not lower the held-out fit residual by ``min_gain``, or when the next one is
    predicted (from the last one's measured time, scaled by its step cost) to end past ``budget_seconds``.
    """

    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    ladder: tuple[str, ...] = CANDIDATES
    min_gain: float = DEFAULT_MIN_GAIN
    score_curves: int = SCORE_CURVES

    def __post_init__(self) -> None:
        b = self.budget_seconds
        if not isinstance(b, (int, float)) or isinstance(b, bool) or not b > 0 or b != b or b == float("inf"):
            raise InputError(f"budget_seconds={b!r} must be a positive number of seconds, e.g. 60")
        bad = [c for c in self.ladder if c not in CANDIDATES]
        if bad or not self.ladder or len(set(self.ladder)) != len(self.ladder):
            raise InputError(f"ladder={list(self.ladder)!r} must name distinct candidates among "
                             f"{', '.join(CANDIDATES)}")
        if not 0.0 <= self.min_gain < 1.0:
            raise InputError(f"min_gain={self.min_gain!r} must be in [0, 1), e.g. {DEFAULT_MIN_GAIN}")
        if not isinstance(self.score_curves, int) or self.score_curves < 1:
            raise InputError(f"score_curves={self.score_curves!r} must be a positive integer")

    def to_dict(self) -> dict[str, Any]:
        return {"budget_seconds": float(self.budget_seconds), "ladder": list(self.ladder),
                "min_gain": self.min_gain, "score_curves": self.score_curves}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        known = {"budget_seconds", "ladder", "min_gain", "score_curves"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"SearchConfig got unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**{**d, **({"ladder": tuple(d["ladder"])} if "ladder" in d else {})})
