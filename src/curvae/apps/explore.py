"""``curvae explore``: serve the browser explorer and one bundle from a local, allow-listed server.

The page runs the bundle with onnxruntime-web in the browser; its files come
with the installed package (``curvae/web``, built into the wheel), or from a
checkout's ``examples/web`` with ``npm ci`` run there, never from a CDN. The
server answers GET and HEAD for exactly these paths and nothing else:

    /, /index.html, /*.js         the explorer page and its modules
    /ort/<file>                   the onnxruntime-web files the page loads (:data:`ORT_FILES`)
    /shared/curvae-bundle.mjs     the bundle rules shared with the Node.js reader
    /bundle/manifest.json         the bundle's manifest ...
    /bundle/<graph>.onnx          ... and the graph files it names

Every bundle file is read per request through the bundle reader's bounded,
regular-file rules (``core.safeio``): a symlink leaving the bundle, a FIFO or
an oversized file is a 404 and one line on the console. Requests whose
``Host`` is not a name the server answers to get 403 (DNS rebinding);
there are no directory listings.
"""

from __future__ import annotations

import functools
import importlib.resources
import ipaddress
import os
import sys
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from curvae.core.errors import BundleError, CurvaeError, InputError
from curvae.core.safeio import MAX_JSON_BYTES, read_bounded
from curvae.runtime.bundle.format import (
    MANIFEST_FILE,
    Manifest,
    graph_byte_cap,
    read_manifest,
)

#: Where the explorer's files live in a curvae checkout (``--web`` points elsewhere).
CHECKOUT_WEB = Path(__file__).resolve().parents[3] / "examples" / "web"
#: The onnxruntime-web files the page loads: its ES module, and the wasm build that module picks
#: (WebGPU and wasm in one binary). The wheel ships exactly these.
ORT_FILES = ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
#: The page's own file types (top level of the page folder only).
PAGE_SUFFIXES = (".html", ".js")
#: Longest request target accepted; the page's own URLs are far shorter.
MAX_URL = 2048
#: Names every local server answers to, besides the address it listens on.
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream"}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # The page's own origin only, and wasm compilation; inline styles are the page's <style> block.
    "Content-Security-Policy": ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
                                "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                                "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class WebFiles:
    """Where each part of the explorer is read from: the page folder, the shared rules, onnxruntime-web."""

    page: Path
    shared: Path
    ort: Path
    origin: str = ""  # "package" or a folder, for messages


def packaged_web() -> Path | None:
    """``curvae/web`` inside the installed package, when it holds the page (wheels do; checkouts may not)."""
    try:
        root = Path(str(importlib.resources.files("curvae") / "web"))
    except (ModuleNotFoundError, TypeError):
        return None
    return root if (root / "index.html").is_file() and (root / "ort" / ORT_FILES[0]).is_file() else None


def find_web(web: str | os.PathLike[str] | None = None) -> WebFiles:
    """The explorer's files: ``web`` (a folder laid out like ``examples/web``), else the installed package's,
    else the checkout's ``examples/web``."""
    if web is None:
        pkg = packaged_web()
        if pkg is not None:
            return WebFiles(page=pkg, shared=pkg / "shared", ort=pkg / "ort", origin="package")
    root = Path(web) if web is not None else CHECKOUT_WEB
    if not (root / "index.html").is_file():
        where = "" if web is not None else " and this curvae was installed without them"
        raise CurvaeError(f"the explorer page is not in {str(root)!r}{where}; reinstall curvae from a wheel, or "
                          "pass --web examples/web from a curvae checkout")
    files = WebFiles(page=root, shared=root.parent / "shared", ort=root / "node_modules" / "onnxruntime-web" / "dist",
                     origin=str(root))
    missing = [f for f in ORT_FILES if not (files.ort / f).is_file()]
    if missing:
        raise CurvaeError(f"onnxruntime-web is not installed in {str(root)!r} ({missing[0]} is missing); run "
                          "`npm ci` there (or `make explore`, which does)")
    return files


def routes(bundle: str | os.PathLike[str], manifest: Manifest, web: WebFiles) -> dict[str, tuple[Path, int]]:
    """URL path → (file, byte cap): the complete allow-list. Bundle files are re-read per request."""
    out: dict[str, tuple[Path, int]] = {}
    for p in sorted(web.page.iterdir()):
        if p.suffix in PAGE_SUFFIXES and p.is_file():
            out[f"/{p.name}"] = (p, 16 * 2**20)
    out["/"] = out["/index.html"]
    out["/shared/curvae-bundle.mjs"] = (web.shared / "curvae-bundle.mjs", 2**20)
    out.update({f"/ort/{name}": (web.ort / name, 256 * 2**20) for name in ORT_FILES})
    root, cap = Path(bundle), graph_byte_cap(manifest)
    for name in sorted(manifest.files()):
        out[f"/bundle/{name}"] = (root / name, MAX_JSON_BYTES if name == MANIFEST_FILE else cap)
    return out


@dataclass(frozen=True)
class ServerRules:
    """What the handler serves and to whom."""

    files: dict[str, tuple[Path, int]]
    roots: dict[str, Path] = field(default_factory=dict)  # URL prefix → folder a symlink may resolve into
    hosts: frozenset[str] = LOCAL_NAMES


def _host_name(header: str | None) -> str | None:
    """The name in a ``Host`` header, lower-cased, without its port or IPv6 brackets; None when malformed."""
    if not header or any(c.isspace() for c in header):
        return None
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 and (len(h) == end + 1 or h[end + 1] == ":") else None
    name, _, port = h.partition(":")
    return name if name and (not port or port.isdigit()) else None


class _Handler(BaseHTTPRequestHandler):
    server_version = "curvae-explore"
    sys_version = ""

    def __init__(self, *args, rules: ServerRules, **kwargs) -> None:
        self.rules = rules
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _refuse_method(self) -> None:
        self._status(405, extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def _status(self, code: int, *, extra: dict[str, str] | None = None, body: bool = True) -> None:
        text = f"{code} {self.responses.get(code, ('',))[0]}\n".encode()
        self.send_response(code)
        for k, v in {**HEADERS, **(extra or {}), "Content-Type": "text/plain; charset=utf-8",
                     "Content-Length": str(len(text))}.items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(text)

    def _empty(self, code: int) -> None:
        self.send_response(code)
        for k, v in HEADERS.items():
            self.send_header(k, v)
        self.end_headers()

    def _serve(self, *, body: bool) -> None:
        if len(self.path) > MAX_URL:
            return self._status(414)
        if _host_name(self.headers.get("Host")) not in self.rules.hosts:
            return self._status(403)
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path == "/favicon.ico":  # browsers ask for it unprompted; the page has none
            return self._empty(204)
        entry = self.rules.files.get(path)
        if entry is None:
            return self._status(404)
        file, cap = entry
        prefix = "/bundle/" if path.startswith("/bundle/") else None
        try:
            data = read_bounded(file, max_bytes=cap, root=self.rules.roots.get(prefix, file.parent),
                                error=BundleError, fix="the explorer does not serve it")
        except BundleError as exc:
            print(f"curvae explore: refused {path}: {exc}", file=sys.stderr, flush=True)
            return self._status(404)
        self.send_response(200)
        ctype = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        for k, v in {**HEADERS, "Content-Type": ctype, "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # quiet: the CLI prints the URL once
        pass


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def allowed_hosts(host: str, allow: tuple[str, ...] = ()) -> frozenset[str]:
    """The ``Host`` names a server on ``host`` answers to; a non-loopback ``host`` needs ``allow``."""
    if not _is_loopback(host) and not allow:
        raise InputError(f"--host {host} serves the explorer beyond this machine, so the names clients use must be "
                         f"listed; pass --allow-host NAME for each (e.g. --allow-host {os.uname().nodename})")
    names = {host.strip("[]").lower(), *(a.strip("[]").lower() for a in allow)}
    return frozenset(LOCAL_NAMES | names) - {"0.0.0.0", "::"}


def make_server(bundle: str | os.PathLike[str], *, web: str | os.PathLike[str] | None = None,
                host: str = "127.0.0.1", port: int = 8765, allow_hosts: tuple[str, ...] = ()) -> ThreadingHTTPServer:
    """A server for the explorer and ``bundle``; ``port=0`` picks a free one (``server.server_address``)."""
    manifest = read_manifest(bundle)  # the bundle's own error first, in one line: it is what the user named
    hosts = allowed_hosts(host, allow_hosts)
    rules = ServerRules(files=routes(bundle, manifest, find_web(web)), roots={"/bundle/": Path(bundle)}, hosts=hosts)
    handler = functools.partial(_Handler, rules=rules)
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise CurvaeError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
