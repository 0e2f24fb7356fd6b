"""``curvae explore``: serve the browser explorer and a bundle from one local static server.

The page (``examples/web``) runs the bundle with onnxruntime-web, whose
``.wasm`` files are served from ``examples/web/node_modules`` (``npm ci``
there), never from a CDN: it works offline. The server only serves files:

    /            the explorer page and its modules
    /ort/        onnxruntime-web's dist folder
    /shared/     the bundle rules shared with the Node.js reader
    /bundle/     the bundle
"""

from __future__ import annotations

import functools
import os
import posixpath
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from curvae.core.errors import CurvaeError
from curvae.runtime.bundle import read_manifest

#: Where the explorer's files live in a curvae checkout.
DEFAULT_WEB = Path(__file__).resolve().parents[3] / "examples" / "web"


def routes(bundle: str | os.PathLike[str], web: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """URL prefix → folder, after checking that the bundle reads and the page's files are installed."""
    read_manifest(bundle)  # a folder that is no bundle fails here, in one line, before anything is served
    web_root = Path(web) if web is not None else DEFAULT_WEB
    ort_dist = web_root / "node_modules" / "onnxruntime-web" / "dist"
    if not (web_root / "index.html").is_file():
        raise CurvaeError(f"the explorer page is not in {str(web_root)!r}; run curvae explore from a curvae checkout "
                          "or pass --web examples/web")
    if not (ort_dist / "ort.min.mjs").is_file():
        raise CurvaeError(f"onnxruntime-web is not installed in {str(web_root)!r}; run `npm ci` there "
                          "(or `make explore`, which does)")
    return {"/ort/": ort_dist, "/shared/": web_root.parent / "shared", "/bundle/": Path(bundle), "/": web_root}


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream"}

    def __init__(self, *args, routes: dict[str, Path], **kwargs) -> None:
        self.routes = routes
        super().__init__(*args, directory=str(routes["/"]), **kwargs)

    def translate_path(self, path: str) -> str:
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        for prefix, folder in self.routes.items():
            stem = prefix.rstrip("/")
            if path == stem or path.startswith(stem + "/") or prefix == "/":
                rest = path[len(stem):].lstrip("/")
                parts = [p for p in rest.split("/") if p not in ("", ".", "..")]
                return str(folder.joinpath(*parts)) if parts else str(folder)
        return str(self.routes["/"])

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # quiet: the CLI prints the URL once
        pass


def make_server(bundle: str | os.PathLike[str], *, web: str | os.PathLike[str] | None = None,
                host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A server for the explorer and ``bundle``; ``port=0`` picks a free one (``server.server_address``)."""
    handler = functools.partial(_Handler, routes=routes(bundle, web))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise CurvaeError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
