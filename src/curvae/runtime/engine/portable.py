"""How a :class:`~curvae.runtime.model.CurveModel` travels to other processes: pickling, Dask tokens, copies.

A CurveModel pickles as its verified graph bytes, manifest and options, never a
session: what a worker process receives is small, re-verified against the
manifest's hashes, and opens its sessions on first use (once per process,
shared by every model with the same graphs and options).
"""

from __future__ import annotations

from pathlib import Path

from curvae.core.errors import BundleError, InputError
from curvae.runtime.bundle.format import Manifest, sha256_bytes, vet_graph


class Portable:
    """The pickling half of :class:`~curvae.runtime.model.CurveModel` (it sets the attributes used here)."""

    def __getstate__(self) -> dict:
        if self._graphs is None:
            raise InputError("this CurveModel was not opened by CurveModel.load, so it cannot be pickled")
        return {"path": str(self.path), "manifest": self.manifest.to_dict(), "variant": self.variant,
                "graphs": self._graphs, "session_args": self._session_args, "head": self._head}

    def __setstate__(self, state: dict) -> None:
        manifest = Manifest.from_dict(state["manifest"])
        enc_info, dec_info, opset, ir_version = manifest.graphs(state["variant"])
        for info, data in zip((enc_info, dec_info), state["graphs"]):
            if sha256_bytes(data) != info.sha256:
                raise BundleError(f"a pickled CurveModel carries {info.file} bytes whose sha256 differs from its "
                                  "manifest; it was altered in transit: pickle the model again from its bundle")
            vet_graph(data, opset, ir_version, name=info.file)
        head = state.get("head")
        if head is not None and (manifest.params is None or sha256_bytes(head) != manifest.params.graph.sha256):
            raise BundleError("a pickled CurveModel carries params.onnx bytes whose sha256 differs from its manifest; "
                              "it was altered in transit: pickle the model again from its bundle")
        self.__init__(Path(state["path"]), manifest, None, None, state["variant"], graphs=tuple(state["graphs"]),
                      session_args=state["session_args"], head=head)

    def __dask_tokenize__(self) -> tuple:
        """A cheap, stable token for Dask (the graphs' hashes and options), so a model is one key in a task graph."""
        enc, dec, _, _ = self.manifest.graphs(self.variant)
        head = None if self.manifest.params is None else self.manifest.params.graph.sha256
        return ("CurveModel", enc.sha256, dec.sha256, head, self.variant, repr(self._session_args))

    def with_threads(self, threads: int | None):
        """This model with ``threads`` intra-op threads per session (for worker processes); sessions open lazily."""
        if self._graphs is None:
            raise InputError("this CurveModel was not opened by CurveModel.load, so it cannot be copied")
        state = self.__getstate__()
        state["session_args"] = {**state["session_args"], "threads": threads}
        other = type(self).__new__(type(self))
        other.__setstate__(state)
        return other
