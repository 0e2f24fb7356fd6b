"""Networks kept per process by their exact inputs: exporting one run again (another opset, a precision variant,
a forced re-export, a grid search's refit) reuses a network instead of training the same one again."""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


class Memo:
    """The last ``size`` results of a deterministic, seeded training function, by a hash of its inputs.

    A hit returns a deep copy, so a caller may change what it gets without touching the kept one.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._kept: OrderedDict[str, object] = OrderedDict()

    @staticmethod
    def key(arrays: tuple[np.ndarray, ...], options: tuple) -> str:
        """A sha256 of ``options`` (their repr), each array's shape and dtype, and its bytes."""
        h = hashlib.sha256(repr((options, [(a.shape, str(a.dtype)) for a in arrays])).encode())
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def get(self, key: str, make: Callable[[], T]) -> T:
        """A copy of the result kept under ``key``, made by ``make()`` the first time."""
        if key not in self._kept:
            self._kept[key] = make()
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        self._kept.move_to_end(key)
        return copy.deepcopy(self._kept[key])
