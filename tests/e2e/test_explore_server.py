"""The explorer's server: an allow-list under the bundle reader's rules, Host checks, headers, GET and HEAD only.

A real server on a free port, real files and a real bundle; requests go over
loopback with ``http.client``, so each raw request (Host header, method, URL)
is exactly what the test sends.
"""

from __future__ import annotations

import http.client
import os
import shutil
import threading
from pathlib import Path

import pytest

from curvae.apps.explore import ORT_FILES, make_server
from curvae.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def web(tmp_path) -> Path:
    """A page folder laid out like examples/web (the page's real files; small stand-ins for the ort binaries)."""
    root = tmp_path / "web"
    root.mkdir()
    for p in (ROOT / "examples" / "web").iterdir():
        if p.suffix in (".html", ".js"):
            shutil.copyfile(p, root / p.name)
    (root / "README.md").write_text("not served")
    shutil.copytree(ROOT / "examples" / "shared", tmp_path / "shared")
    dist = root / "node_modules" / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    for name in (*ORT_FILES, "ort.all.min.mjs", "ort.min.mjs.map"):
        (dist / name).write_bytes(b"// " + name.encode())
    return root


@pytest.fixture
def served(bundle_copy, web, capfd):
    servers = []

    def start(bundle=bundle_copy, **kw):
        server = make_server(bundle, web=web, port=0, **kw)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def request(port: int, path: str, *, method: str = "GET", host: str | None = None, addr: str = "127.0.0.1"):
    conn = http.client.HTTPConnection(addr, port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
    conn.endheaders()
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, dict(res.getheaders()), body


def test_the_page_the_ort_files_and_the_named_bundle_files_are_served(served, bundle_copy):
    port = served()
    for path in ("/", "/index.html", "/explorer.js", "/shared/curvae-bundle.mjs", *(f"/ort/{f}" for f in ORT_FILES),
                 "/bundle/manifest.json", "/bundle/encoder.onnx", "/bundle/decoder.onnx", "/?bundle=/bundle/"):
        assert request(port, path)[0] == 200, path
    status, headers, body = request(port, "/bundle/decoder.onnx")
    assert body == (bundle_copy / "decoder.onnx").read_bytes()
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "'wasm-unsafe-eval'" in csp and "http" not in csp
    assert request(port, "/ort/ort-wasm-simd-threaded.jsep.wasm")[1]["Content-Type"] == "application/wasm"


def test_a_symlink_to_a_file_outside_is_not_served(served, bundle_copy, capfd):
    """The reported leak: notes.txt -> /etc/passwd answered 200 with its contents."""
    (bundle_copy / "notes.txt").symlink_to("/etc/passwd")
    port = served()
    status, _, body = request(port, "/bundle/notes.txt")
    assert status == 404 and b"root:" not in body
    # a graph the manifest names, replaced by a symlink out of the bundle: 404 and one console line
    (bundle_copy / "decoder.onnx").unlink()
    (bundle_copy / "decoder.onnx").symlink_to("/etc/passwd")
    status, _, body = request(port, "/bundle/decoder.onnx")
    assert status == 404 and b"root:" not in body
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused /bundle/decoder.onnx" in err[0] and "outside its folder" in err[0]


def test_a_symlink_inside_the_bundle_is_followed_but_its_target_is_not_listed(served, bundle_copy):
    real = bundle_copy / "decoder-real.onnx"
    (bundle_copy / "decoder.onnx").rename(real)
    (bundle_copy / "decoder.onnx").symlink_to(real.name)
    port = served()
    status, _, body = request(port, "/bundle/decoder.onnx")
    assert status == 200 and body == real.read_bytes()
    assert request(port, "/bundle/decoder-real.onnx")[0] == 404  # the manifest does not name it


def test_a_fifo_is_refused_without_hanging(served, bundle_copy, capfd):
    (bundle_copy / "encoder.onnx").unlink()
    os.mkfifo(bundle_copy / "encoder.onnx")
    port = served()
    assert request(port, "/bundle/encoder.onnx")[0] == 404
    assert "not a regular file" in capfd.readouterr().err


def test_no_listings_no_traversal_and_nothing_unnamed(served, bundle_copy):
    (bundle_copy / "extra.json").write_text("{}")
    port = served()
    for path in ("/bundle/", "/bundle", "/ort/", "/shared/", "/node_modules/", "/README.md", "/ort/ort.all.min.mjs",
                 "/ort/ort.min.mjs.map", "/bundle/extra.json", "/bundle/..%2f..%2f..%2fetc%2fpasswd",
                 "/bundle/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/bundle/./manifest.json"):
        status, _, body = request(port, path)
        assert status == 404 and b"root:" not in body and b"<a href" not in body, path


def test_foreign_host_headers_are_refused(served):
    port = served()
    assert request(port, "/bundle/manifest.json", host=f"evil.example:{port}")[0] == 403
    assert request(port, "/", host="evil.example")[0] == 403
    assert request(port, "/", host="")[0] == 403
    assert request(port, "/", host="localhost.evil.example")[0] == 403
    for ok in (f"localhost:{port}", "localhost", "127.0.0.1", f"[::1]:{port}", "LOCALHOST"):
        assert request(port, "/", host=ok)[0] == 200, ok


def test_only_get_and_head(served):
    port = served()
    status, headers, body = request(port, "/bundle/manifest.json", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        status, headers, _ = request(port, "/bundle/manifest.json", method=method)
        assert status == 405 and headers["Allow"] == "GET, HEAD", method


def test_an_over_long_url_is_refused(served):
    port = served()
    assert request(port, "/" + "a" * 5000)[0] == 414
    assert request(port, "/bundle/manifest.json?" + "x" * 3000)[0] == 414


def test_listening_beyond_loopback_needs_named_hosts(served, bundle_copy, web):
    with pytest.raises(InputError, match=r"--host 0\.0\.0\.0 serves the explorer beyond this machine.*--allow-host"):
        make_server(bundle_copy, web=web, host="0.0.0.0", port=0)
    port = served(host="0.0.0.0", allow_hosts=("curves.lab",))
    assert request(port, "/", host=f"curves.lab:{port}")[0] == 200
    assert request(port, "/", host=f"127.0.0.1:{port}")[0] == 200
    assert request(port, "/", host=f"evil.example:{port}")[0] == 403
    assert request(port, "/", host=f"0.0.0.0:{port}")[0] == 403


def test_the_wheel_ships_exactly_the_files_the_server_allows():
    """setup.py cannot import curvae at build time, so it keeps its own copy of the lists: they must agree."""
    import ast

    from curvae.apps.explore import PAGE_SUFFIXES

    consts = {t.id: ast.literal_eval(node.value) for node in ast.parse((ROOT / "setup.py").read_text()).body
              if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
              and t.id in ("ORT_FILES", "PAGE_SUFFIXES")}
    assert consts == {"ORT_FILES": ORT_FILES, "PAGE_SUFFIXES": PAGE_SUFFIXES}
