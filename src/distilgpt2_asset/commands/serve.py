"""`serve`: the model behind the real azmlinfsrv on this machine, until Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

from pathlib import Path

from ..local_server import DEFAULT_HOST
from ..serve import DEFAULT_PORT, DEFAULT_THREADS


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the model locally with azmlinfsrv and scoring/score.py (builds and registers it if needed)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", type=Path, help="a built MLflow model folder to serve as it is")
    what.add_argument(
        "--source",
        help="hub id or local Hugging Face snapshot to build and serve (default: the registered build of spec.yaml's "
        "version, built from the hub at the pinned SHA when missing)",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--engine",
        choices=("openvino", "ctranslate2", "transformers"),
        help="sets TEXTGEN_ENGINE (default: openvino on a CPU, ctranslate2 on CUDA)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"gunicorn threads: concurrent requests (default {DEFAULT_THREADS})",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="also serve Prometheus metrics on 127.0.0.1:PORT/metrics (sets TEXTGEN_METRICS_PORT; README: Operate)",
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..serve import LocalServer, curl_command, model_for_serving, start_server
    from ..spec import load_spec
    from ..stop_signals import stop_on_signals

    stop_on_signals()  # first: a stop at any moment (build, start-up, serving) unwinds through the finally below
    launched: list[LocalServer] = []  # the server, recorded the moment its process exists
    try:
        spec = load_spec()
        model_dir = model_for_serving(spec, args.model, args.source)
        print(f"starting azmlinfsrv on {args.host}:{args.port} with {model_dir}", flush=True)
        env = {"TEXTGEN_ENGINE": args.engine} if args.engine else {}
        if args.metrics_port:
            env.update(
                TEXTGEN_METRICS_PORT=str(args.metrics_port), TEXTGEN_METRICS_HOST="127.0.0.1"
            )  # this machine only
        server = start_server(
            model_dir, host=args.host, port=args.port, threads=args.threads, env=env, on_launch=launched.append
        )
        if args.metrics_port:
            print(f"metrics: http://127.0.0.1:{args.metrics_port}/metrics", flush=True)
        print(
            f"\nready: {server.score_url}  (Ctrl-C stops it)\n"
            f"try:\n  {curl_command(server.score_url, spec.sample_request)}\n",
            flush=True,
        )
        server.process.wait()
        print(f"the server exited with code {server.process.returncode}")
        return server.process.returncode or 1
    except KeyboardInterrupt:
        if not launched:
            raise  # nothing was started: "interrupted"
        print("stopping the server", flush=True)
        launched[0].stop()
        return 0
    finally:
        for server in launched:
            server.stop()
