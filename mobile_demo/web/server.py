"""Serves the web demo: the page, the LiteRT.js files it loads, and a model.

Routes (nothing else is served; no directory listings):
- `/`, `/index.html`, `/style.css`, `/js/*.js`: the page (this folder);
- `/node_modules/@litertjs/{core,wasm-utils}/...`: the LiteRT.js module and
  wasm files, from `npm ci` in this folder;
- `/model/<file>`: the files of the model folder (`--model-dir`: the
  `tflite/` folder of `python -m export --out DIR`, or DIR itself; by
  default an export of the shipped `text` model, `exported_model`), i.e. the
  `.tflite` models and their JSON contracts.

Every response carries `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp`, which make the page
cross-origin isolated (SharedArrayBuffer, so multi-threaded wasm) on
localhost or HTTPS.
"""

from __future__ import annotations

import functools
import http.server
import mimetypes
import ssl
import threading
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

WEB_DIR = Path(__file__).resolve().parent
NODE_MODULES = WEB_DIR / "node_modules"
PAGE_FILES = ("index.html", "style.css")
# The parts of the npm packages the page loads.
PACKAGE_DIRS = (
    "@litertjs/core/dist",
    "@litertjs/core/wasm",
    "@litertjs/wasm-utils/dist",
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".tflite": "application/octet-stream",
    ".png": "image/png",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def model_folder(path) -> Path:
    """The folder holding the `.tflite` files: `path/tflite` (an export's
    output folder) when it exists, else `path`."""
    path = Path(path)
    return path / "tflite" if (path / "tflite").is_dir() else path


def _inside(base: Path, relative: str) -> Path | None:
    """`base/relative` if it is a file inside `base` (no `..`, no links out)."""
    parts = PurePosixPath(relative).parts
    if not parts or any(p in ("..", "") or p.startswith(".") for p in parts):
        return None
    candidate = (base / Path(*parts)).resolve()
    try:
        candidate.relative_to(base.resolve())
    except ValueError:
        return None
    return candidate if candidate.is_file() else None


def resolve(url_path: str, model_dir: Path) -> Path | None:
    """The file a URL path maps to, or None (404)."""
    path = unquote(urlsplit(url_path).path)
    if path in ("/", ""):
        path = "/index.html"
    path = path.lstrip("/")
    if path in PAGE_FILES:
        return WEB_DIR / path
    if path.startswith("js/") and path.endswith(".js"):
        return _inside(WEB_DIR / "js", path[len("js/") :])
    if path.startswith("model/"):
        return _inside(model_dir, path[len("model/") :])
    if path.startswith("node_modules/"):
        rest = path[len("node_modules/") :]
        for prefix in PACKAGE_DIRS:
            if rest.startswith(prefix + "/"):
                return _inside(NODE_MODULES / prefix, rest[len(prefix) + 1 :])
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of the routes above, with the isolation headers."""

    server_version = "keras_udd-web-demo"

    def __init__(self, *args, model_dir: Path, quiet: bool = False, **kwargs):
        self.model_dir = model_dir
        self.quiet = quiet
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._serve(body=True)

    def do_HEAD(self):  # noqa: N802
        self._serve(body=False)

    def _serve(self, body):
        path = resolve(self.path, self.model_dir)
        if path is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8", body)
            return
        content_type = CONTENT_TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        self._send(200, path.read_bytes(), content_type, body)

    def _send(self, status, data, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 (the base's signature)
        if not self.quiet:
            super().log_message(format, *args)


def make_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    model_dir=None,
    quiet: bool = False,
    certfile=None,
    keyfile=None,
) -> http.server.ThreadingHTTPServer:
    """A server for the demo (not started; `port=0` picks a free port, read
    it from `server.server_address`). With `certfile` it serves HTTPS."""
    folder = model_folder(model_dir if model_dir is not None else "exported")
    handler = functools.partial(Handler, model_dir=folder, quiet=quiet)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.model_dir = folder
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        # The handshake runs in the request's thread, not in accept().
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    return server


def serve_in_thread(**kwargs):
    """`(server, base URL)` of a demo server running in a daemon thread;
    stop it with `server.shutdown()`."""
    server = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    scheme = "https" if kwargs.get("certfile") else "http"
    return server, f"{scheme}://{host}:{port}/"


def exported_model(model: str, cache_root) -> Path:
    """The float32 TFLite export of `model` (a shipped model's name, e.g.
    "text", or a model file), made once into `cache_root/<name>-<digest of
    the model file>` with `keras_udd.export` and reused after that."""
    import hashlib

    from keras_udd import pretrained
    from keras_udd.export.cli import main as export_main

    path = Path(pretrained.resolve(model))
    if not path.is_file():
        raise FileNotFoundError(f"--model {model}: no such model file or name")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    folder = Path(cache_root).expanduser() / f"{path.stem}-{digest}"
    if any(model_folder(folder).glob("*.json")):
        return folder
    print(f"Exporting {model} for the page (once) into {folder} ...", flush=True)
    argv = ["--model", model, "--out", str(folder), "--formats", "tflite",
            "--quantize", "none", "--latency-size", "0"]  # fmt: skip
    if export_main(argv) != 0:
        raise RuntimeError(f"exporting {model} failed (see above)")
    return folder


def missing_files(model_dir) -> list[str]:
    """What the page needs and cannot find (empty when all is there)."""
    problems = []
    if not (NODE_MODULES / "@litertjs" / "core" / "wasm").is_dir():
        problems.append(f"LiteRT.js is not installed: run `npm ci --prefix {WEB_DIR}`")
    folder = model_folder(model_dir)
    if not any(folder.glob("*.json")):
        problems.append(
            f"no model contract (*.json) in {folder}: run `python -m export --model "
            "M.keras --out DIR --formats tflite` and pass --model-dir DIR"
        )
    return problems


def lan_address() -> str | None:
    """This machine's address on its local network (for a phone's URL), or
    None. Connecting a UDP socket sends nothing; it only picks the route."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address
