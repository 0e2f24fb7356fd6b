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
                "graphs": self._graphs, "session_args": self._session_args, "head": self._head,
                "emulator": self._emulator_bytes}

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
        emulator = state.get("emulator")
        if emulator is not None and (manifest.emulator is None or
                                     sha256_bytes(emulator) != manifest.emulator.graph.sha256):
            raise BundleError("a pickled CurveModel carries emulator.onnx bytes whose sha256 differs from its "
                              "manifest; it was altered in transit: pickle the model again from its bundle")
        self.__init__(Path(state["path"]), manifest, None, None, state["variant"], graphs=tuple(state["graphs"]),
                      session_args=state["session_args"], head=head, emulator=emulator)

    def save(self, path, *, force: bool = False) -> None:
        """Write this model's bundle to the folder ``path``: the verified graph bytes it holds and its manifest.

        The folder is built beside ``path`` and renamed into place (``force`` replaces an existing one), and
        :meth:`CurveModel.load` reads it back with the same hashes. A model loaded as a precision variant
        writes nothing: save the float32 model, and export variants from its run.
        """
        from curvae.core.atomic import atomic_dir, write_bytes, write_json
        from curvae.runtime.bundle.format import MANIFEST_FILE

        if self._graphs is None:
            raise InputError("this CurveModel was not opened by CurveModel.load, so it cannot be saved")
        if self.variant is not None:
            raise InputError(f"this CurveModel runs its {self.variant!r} variant; load the bundle without "
                             "variant= to save it")
        m = self.manifest
        files = {m.encoder.file: self._graphs[0], m.decoder.file: self._graphs[1]}
        if self._head is not None and m.params is not None:
            files[m.params.graph.file] = self._head
        if self._emulator_bytes is not None and m.emulator is not None:
            files[m.emulator.graph.file] = self._emulator_bytes
        manifest = m.to_dict()
        manifest["variants"] = {}  # only the float32 graphs travel with the model
        with atomic_dir(path, force=force) as tmp:
            for name, data in files.items():
                write_bytes(tmp / name, data)
            write_json(tmp / MANIFEST_FILE, manifest)

    def __dask_tokenize__(self) -> tuple:
        """A cheap, stable token for Dask (the graphs' hashes and options), so a model is one key in a task graph."""
        enc, dec, _, _ = self.manifest.graphs(self.variant)
        head = None if self.manifest.params is None else self.manifest.params.graph.sha256
        emu = None if self.manifest.emulator is None else self.manifest.emulator.graph.sha256
        return ("CurveModel", enc.sha256, dec.sha256, head, emu, self.variant, repr(self._session_args))

    def with_threads(self, threads: int | None):
        """This model with ``threads`` intra-op threads per session (for worker processes); sessions open lazily."""
        if self._graphs is None:
            raise InputError("this CurveModel was not opened by CurveModel.load, so it cannot be copied")
        state = self.__getstate__()
        state["session_args"] = {**state["session_args"], "threads": threads}
        other = type(self).__new__(type(self))
        other.__setstate__(state)
        return other
