"""The bundle format: manifest reading, writing and integrity checks.

A bundle is a folder with ``manifest.json``, ``encoder.onnx`` and
``decoder.onnx``; ``docs/bundle-format.md`` is the contract. This module lives
in the torch-free runtime because both the exporter and the runtime use it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curvae.core.errors import BundleError
from curvae.core.safeio import PROTOBUF_MAX_BYTES, read_bounded, read_json
from curvae.runtime.bundle.emulator import EmulatorRecord
from curvae.runtime.bundle.param_head import ParamHeadRecord
from curvae.runtime.bundle.records import (
    BaselineRecord,
    ExportRecord,
    FitResidualRecord,
    GraphInfo,
    HeldOutRecord,
    ParityRecord,
    TrainingRecord,
    VariantRecord,
)
from curvae.runtime.bundle.scan import scan_model
from curvae.runtime.bundle.versions import min_onnxruntime, parse_version

#: Ops that draw random numbers; a bundle must contain none of them.
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                        "Multinomial", "Bernoulli", "Dropout"})

#: 1.1 adds min_onnxruntime; 1.2 the int8 scheme, its error per kernel, the PCA baseline; 1.3 the parameter head;
#: 1.4 the emulator.
FORMAT_VERSION = "1.4"
MANIFEST_FILE = "manifest.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"

ENCODER_INPUTS = ("x", "eps")
ENCODER_OUTPUTS = ("z", "mu", "logvar")
DECODER_INPUTS = ("z",)
DECODER_OUTPUTS = ("x_hat",)


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds; see ``docs/bundle-format.md``."""

    format_version: str
    run_id: str
    n_points: int
    latent_dim: int
    grid: tuple[float, ...]
    family: dict[str, Any]
    encoder: GraphInfo
    decoder: GraphInfo
    opset: int
    ir_version: int
    producer: dict[str, str]
    parity: ParityRecord
    training: TrainingRecord = field(default_factory=TrainingRecord)
    variants: dict[str, VariantRecord] = field(default_factory=dict)
    export: ExportRecord | None = None
    #: Held-out fit residuals for the out-of-family flag (format 1.1; None in older bundles).
    fit_residuals: FitResidualRecord | None = None
    #: Oldest onnxruntime that runs the float32 graphs; derived from opset and IR version
    #: for 1.0 bundles, which did not record it.
    min_onnxruntime: str = ""
    #: The model against PCA on the held-out curves (format 1.2; None in older bundles or without held-out data).
    baseline: BaselineRecord | None = None
    #: A bounded, hashed sample of held-out curves of user data (format 1.2; None for built-in families or opt-out).
    held_out: HeldOutRecord | None = None
    #: The optional third graph, z → the curve's parameters (format 1.3; None without known parameters).
    params: ParamHeadRecord | None = None
    #: The optional fourth graph, θ → (curve, z) (format 1.4; None without known parameters).
    emulator: EmulatorRecord | None = None

    def __post_init__(self) -> None:
        if not self.min_onnxruntime:
            object.__setattr__(self, "min_onnxruntime", min_onnxruntime(self.opset, self.ir_version))

    def runtime_needed(self, variant: str | None = None) -> str:
        """Oldest onnxruntime that runs the float32 graphs or the named variant."""
        if variant is None:
            return self.min_onnxruntime
        self.graphs(variant)  # a clear error for a variant the bundle lacks
        return self.variants[variant].min_onnxruntime

    def graphs(self, variant: str | None = None) -> tuple[GraphInfo, GraphInfo, int, int]:
        """(encoder, decoder, opset, IR version) of the float32 graphs or of a named variant."""
        if variant is None:
            return self.encoder, self.decoder, self.opset, self.ir_version
        if variant not in self.variants:
            have = ", ".join(sorted(self.variants)) or "none"
            raise BundleError(f"variant {variant!r} is not in this bundle (variants: {have}); export it with "
                              "--dtype fp16 or --quantize int8, or load without a variant")
        v = self.variants[variant]
        return v.encoder, v.decoder, v.opset, v.ir_version

    def files(self) -> frozenset[str]:
        """Every file the bundle must hold: the manifest, both graphs and every variant's graphs."""
        names = {MANIFEST_FILE, self.encoder.file, self.decoder.file}
        for v in self.variants.values():
            names |= {v.encoder.file, v.decoder.file}
        if self.params is not None:
            names.add(self.params.graph.file)
        if self.emulator is not None:
            names.add(self.emulator.graph.file)
        return frozenset(names)

    def to_dict(self) -> dict[str, Any]:
        """The ``manifest.json`` layout of ``docs/bundle-format.md``."""
        d: dict[str, Any] = {
            "format_version": self.format_version, "run_id": self.run_id, "n_points": self.n_points,
            "latent_dim": self.latent_dim, "grid": list(self.grid), "family": dict(self.family),
            "graphs": {"encoder": self.encoder.to_dict(), "decoder": self.decoder.to_dict()},
            "opset": self.opset, "ir_version": self.ir_version, "min_onnxruntime": self.min_onnxruntime,
            "producer": dict(self.producer), "training": self.training.to_dict(), "parity": self.parity.to_dict(),
            "variants": {k: v.to_dict() for k, v in self.variants.items()},
        }
        if self.export is not None:
            d["export"] = self.export.to_dict()
        if self.fit_residuals is not None:
            d["fit_residuals"] = self.fit_residuals.to_dict()
        if self.baseline is not None:
            d["baseline"] = self.baseline.to_dict()
        if self.held_out is not None:
            d["held_out"] = self.held_out.to_dict()
        if self.params is not None:
            d["params"] = self.params.to_dict()
        if self.emulator is not None:
            d["emulator"] = self.emulator.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            version = str(d["format_version"])
            major = version.split(".")[0]
            if major != FORMAT_VERSION.split(".")[0]:
                raise BundleError(
                    f"bundle format_version {version!r} is not supported by this curvae "
                    f"(it reads {FORMAT_VERSION.split('.')[0]}.x); upgrade curvae or re-export the bundle"
                )
            opset, ir_version = int(d["opset"]), int(d["ir_version"])
            m = cls(
                format_version=version,
                run_id=str(d["run_id"]),
                n_points=int(d["n_points"]),
                latent_dim=int(d["latent_dim"]),
                grid=tuple(float(v) for v in d["grid"]),
                family=dict(d["family"]),
                encoder=GraphInfo.from_dict(d["graphs"]["encoder"]),
                decoder=GraphInfo.from_dict(d["graphs"]["decoder"]),
                opset=opset,
                ir_version=ir_version,
                producer=dict(d["producer"]),
                parity=ParityRecord.from_dict(d["parity"]),
                training=TrainingRecord.from_dict(d.get("training") or {}),
                variants={str(k): VariantRecord.from_dict(v, min_onnxruntime=min_onnxruntime(int(v["opset"]),
                                                                                              int(v["ir_version"])))
                          for k, v in (d.get("variants") or {}).items()},
                export=ExportRecord.from_dict(d["export"]) if d.get("export") else None,
                fit_residuals=FitResidualRecord.from_dict(d["fit_residuals"]) if d.get("fit_residuals") else None,
                min_onnxruntime=str(d.get("min_onnxruntime") or ""),
                baseline=BaselineRecord.from_dict(d["baseline"]) if d.get("baseline") else None,
                held_out=(HeldOutRecord.from_dict(d["held_out"], n_points=int(d["n_points"]))
                          if d.get("held_out") else None),
                params=ParamHeadRecord.from_dict(d["params"]) if d.get("params") else None,
                emulator=EmulatorRecord.from_dict(d["emulator"]) if d.get("emulator") else None,
            )
            for record in [m, *m.variants.values()]:
                parse_version(record.min_onnxruntime)
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BundleError(f"manifest is malformed ({type(exc).__name__}: {str(exc)[:200]}); "
                              "re-export the bundle") from None
        check_semantics(m)
        if m.encoder.inputs != ENCODER_INPUTS or m.encoder.outputs != ENCODER_OUTPUTS:
            raise BundleError(f"encoder I/O {m.encoder.inputs}->{m.encoder.outputs} differs from the format's "
                              f"{ENCODER_INPUTS}->{ENCODER_OUTPUTS}; re-export the bundle")
        if m.decoder.inputs != DECODER_INPUTS or m.decoder.outputs != DECODER_OUTPUTS:
            raise BundleError(f"decoder I/O {m.decoder.inputs}->{m.decoder.outputs} differs from the format's "
                              f"{DECODER_INPUTS}->{DECODER_OUTPUTS}; re-export the bundle")
        return m


#: Sane bounds on what a manifest may declare; a real export is far inside them.
MAX_POINTS, MAX_LATENT, MAX_HIDDEN, MAX_DEPTH, MAX_OPSET_SEEN = 1_000_000, 4096, 65_536, 64, 100


def _bad(what: str) -> BundleError:
    return BundleError(f"manifest: {what}; re-export the bundle")


def check_semantics(m: Manifest) -> None:
    """Values, not only types: sizes in bounds, a finite increasing grid, finite tolerances, plain file names."""
    if not (2 <= m.n_points <= MAX_POINTS and 1 <= m.latent_dim <= MAX_LATENT):
        raise _bad(f"n_points={m.n_points}, latent_dim={m.latent_dim} are out of bounds "
                   f"(2..{MAX_POINTS} and 1..{MAX_LATENT})")
    if len(m.grid) != m.n_points:
        raise _bad(f"the grid has {len(m.grid)} values but n_points={m.n_points}; len(grid) == n_points is required")
    grid = np.asarray(m.grid, dtype=np.float64)
    if not np.isfinite(grid).all():
        raise _bad(f"grid[{int(np.flatnonzero(~np.isfinite(grid))[0])}] is not finite; the grid must be finite")
    if not (np.diff(grid) > 0).all():
        raise _bad(f"grid[{int(np.flatnonzero(np.diff(grid) <= 0)[0]) + 1}] does not increase; the grid must be "
                   "strictly increasing")
    for name, version in [("", (m.opset, m.ir_version)), *((f" of variant {k}", (v.opset, v.ir_version))
                                                           for k, v in m.variants.items())]:
        if not (1 <= version[0] <= MAX_OPSET_SEEN and 1 <= version[1] <= MAX_OPSET_SEEN):
            raise _bad(f"opset {version[0]} and IR version {version[1]}{name} are out of bounds (1..{MAX_OPSET_SEEN})")
    p = m.parity
    for key in ("atol", "rtol", "max_abs", "max_rel", "float32_noise"):
        value = getattr(p, key)
        if not (np.isfinite(value) and value >= 0):
            raise _bad(f"parity {key}={value!r} must be finite and >= 0")
    for k, v in m.variants.items():
        if not (np.isfinite(v.budget) and v.budget > 0 and all(np.isfinite(x) for x in v.max_abs.values())):
            raise _bad(f"variant {k} has budget {v.budget!r} and errors {v.max_abs}; both must be finite")
    graphs = [m.encoder, m.decoder, *(g for v in m.variants.values() for g in (v.encoder, v.decoder)),
              *([m.params.graph] if m.params is not None else []),
              *([m.emulator.graph] if m.emulator is not None else [])]
    for g in graphs:
        if Path(g.file).name != g.file or not g.file.endswith(".onnx") or g.file.startswith("."):
            raise _bad(f"graph file {g.file!r} must be a plain *.onnx file name inside the bundle")
        if not (len(g.sha256) == 64 and all(c in "0123456789abcdef" for c in g.sha256)):
            raise _bad(f"{g.file} has sha256 {g.sha256[:70]!r}, not 64 lowercase hex digits")
    if len({g.file for g in graphs}) != len(graphs):
        raise _bad(f"graph files {[g.file for g in graphs]} repeat a name; each graph has its own file")
    if m.params is not None and m.held_out is not None and m.params.held_out and \
            len(m.params.held_out) != len(m.held_out.curves):
        raise _bad(f"params.held_out has {len(m.params.held_out)} rows for {len(m.held_out.curves)} held-out curves")
    if m.emulator is not None and m.emulator.theta_fit is not None and m.emulator.theta_fit.n_points != m.n_points:
        raise _bad(f"emulator.theta_fit was measured on {m.emulator.theta_fit.n_points} points but n_points={m.n_points}")
    if m.fit_residuals is not None and m.fit_residuals.n_points != m.n_points:
        raise _bad(f"fit_residuals were measured on {m.fit_residuals.n_points} points but n_points={m.n_points}")
    shape = m.training.config.get("model") if isinstance(m.training.config, dict) else None
    if isinstance(shape, dict) and ("hidden" in shape or "depth" in shape):
        hidden, depth = shape.get("hidden", 1), shape.get("depth", 1)
        if not (isinstance(hidden, int) and isinstance(depth, int) and 1 <= hidden <= MAX_HIDDEN
                and 0 <= depth <= MAX_DEPTH):
            raise _bad(f"the training config declares hidden={hidden!r}, depth={depth!r}; out of bounds "
                       f"(1..{MAX_HIDDEN} and 0..{MAX_DEPTH})")


def graph_byte_cap(m: Manifest) -> int:
    """Largest graph file read for this bundle: 2 × its float32 weights plus 1 MiB, when the training
    config declares the network's shape; never more than protobuf's 2 GiB."""
    shape = m.training.config.get("model") if isinstance(m.training.config, dict) else None
    if not isinstance(shape, dict) or "hidden" not in shape:
        return PROTOBUF_MAX_BYTES
    h, depth, p, d = int(shape["hidden"]), int(shape.get("depth", 1)), m.n_points, m.latent_dim
    inner = max(depth - 1, 0) * (h * h + h)
    params = max(p * h + h + inner + 2 * d * (h + 1), d * h + h + inner + p * (h + 1))
    return min(PROTOBUF_MAX_BYTES, 2 * 4 * params + 2**20)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    """Read and validate ``manifest.json`` of a bundle folder (no graph is opened)."""
    root = Path(bundle)
    if not root.is_dir():
        raise BundleError(f"bundle {str(root)!r} is not a folder; pass the folder written by `curvae export`")
    path = root / MANIFEST_FILE
    if not os.path.lexists(path):
        raise BundleError(f"bundle {str(root)!r} has no {MANIFEST_FILE}; it is not a curvae bundle or it is incomplete")
    data = read_json(path, root=root, error=BundleError, fix="re-export the bundle")
    if not isinstance(data, dict):
        raise BundleError(f"{path} holds {type(data).__name__}, not an object; re-export the bundle")
    return Manifest.from_dict(data)


def read_bundle(bundle: str | os.PathLike[str], variant: str | None = None) -> tuple[Manifest, bytes, bytes]:
    """Validate a bundle and return its manifest with the verified graph bytes.

    The graphs are read once and hashed in memory, so the bytes handed to
    onnxruntime are exactly the bytes that were checked. ``variant`` picks
    a precision variant (``"fp16"``, ``"int8"``) listed in the manifest.

    Returns
    -------
    manifest : Manifest
    encoder_bytes, decoder_bytes : bytes
    """
    root = Path(bundle)
    manifest = read_manifest(root)
    present = {p.name for p in root.iterdir()}
    expected = manifest.files()
    missing = sorted(expected - present)
    extra = sorted(present - expected)
    if missing:
        raise BundleError(f"bundle {str(root)!r} is missing {missing}; re-export it")
    if extra:
        raise BundleError(f"bundle {str(root)!r} has unexpected files {extra}; this bundle holds only "
                          f"{sorted(expected)}: remove the extra files")
    enc_info, dec_info, opset, ir_version = manifest.graphs(variant)
    cap = graph_byte_cap(manifest)
    blobs = []
    for info in (enc_info, dec_info):
        data = read_bounded(root / info.file, max_bytes=cap, root=root, error=BundleError,
                            fix="re-export the bundle")
        digest = sha256_bytes(data)
        if digest != info.sha256:
            raise BundleError(
                f"{info.file} has sha256 {digest[:12]}… but the manifest says {info.sha256[:12]}…; "
                "the file is corrupt or was replaced: re-export the bundle"
            )
        vet_graph(data, opset, ir_version, name=info.file)
        blobs.append(data)
    return manifest, blobs[0], blobs[1]


def vet_graph(data: bytes, opset_expected: int, ir_expected: int, *, name: str) -> None:
    """Refuse a graph whose opset or IR version disagrees with the manifest, that uses
    external data (a path outside the bundle could be read) or that contains random ops."""
    facts = scan_model(data, name=name)
    if facts.external_data:
        raise BundleError(f"{name} references external data files; bundles hold self-contained graphs only "
                          "(external paths could point outside the bundle): re-export the bundle")
    opset = facts.opsets.get("", 0)
    if opset != opset_expected or facts.ir_version != ir_expected:
        raise BundleError(f"{name} has opset {opset} and IR version {facts.ir_version} but the manifest says "
                          f"{opset_expected} and {ir_expected}; the graph was replaced: re-export the bundle")
    bad = sorted(facts.op_types & RANDOM_OPS)
    if bad:
        raise BundleError(f"{name} contains random ops {bad}; curvae graphs take noise as the explicit 'eps' "
                          "input: re-export the bundle with curvae export")
