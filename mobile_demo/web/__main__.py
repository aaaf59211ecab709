"""Command line: python -m mobile_demo.web serve [--port P] [--model-dir DIR].

Serves the web demo on http://127.0.0.1:P/ (default 8000), with the shipped
`text` deblurrer (exported once into ~/.cache/keras_udd/web_demo) unless
`--model` names another model or `--model-dir` an existing export. `--host 0.0.0.0`
makes it reachable from a phone on the same network (http://<this
machine's address>:P/); see mobile_demo/README.md for what a phone needs
(HTTPS or a flag for threads and WebGPU: `--certfile/--keyfile`).
"""

import argparse
import sys

from mobile_demo.web import server


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mobile_demo.web",
        description="Serve the on-device deblurring page (LiteRT.js).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the page and a model")
    serve.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; "
        "0.0.0.0 for a phone on the same network)",
    )
    serve.add_argument(
        "--model-dir",
        help="output folder of `python -m export` (or its tflite/ folder) "
        "holding deblurrer_*.tflite and their .json contracts (default: an "
        "export of --model)",
    )
    serve.add_argument(
        "--model",
        default="text",
        help="without --model-dir: the model to export (once) and serve, a "
        "shipped model's name or a .keras file (default: %(default)s)",
    )
    serve.add_argument(
        "--cache-dir",
        default="~/.cache/keras_udd/web_demo",
        help="where the export of --model is kept (default: %(default)s)",
    )
    serve.add_argument("--certfile", help="PEM certificate: serve HTTPS")
    serve.add_argument("--keyfile", help="PEM private key of --certfile")
    serve.add_argument("--quiet", action="store_true", help="no request log")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.model_dir is None:
        try:
            args.model_dir = server.exported_model(args.model, args.cache_dir)
        except (OSError, ValueError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    for problem in server.missing_files(args.model_dir):
        print(f"warning: {problem}", file=sys.stderr)
    try:
        httpd = server.make_server(
            args.host,
            args.port,
            args.model_dir,
            args.quiet,
            args.certfile,
            args.keyfile,
        )
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}")
        return 2
    scheme = "https" if args.certfile else "http"
    port = httpd.server_address[1]
    print(f"Serving the deblurring demo, model folder {httpd.model_dir}")
    if args.host in ("0.0.0.0", ""):
        print(f"  on this machine: {scheme}://127.0.0.1:{port}/")
        address = server.lan_address()
        if address:
            print(f"  from a phone on the same network: {scheme}://{address}:{port}/")
    else:
        print(f"  {scheme}://{args.host}:{port}/")
    print("Ctrl-C stops it.", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
