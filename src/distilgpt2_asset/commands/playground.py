"""`playground`: a page on 127.0.0.1 to write with the model, against a local server or an endpoint."""

from __future__ import annotations

import signal

from ..local_server import DEFAULT_HOST
from ..serve import DEFAULT_PORT

DEFAULT_PLAYGROUND_PORT = 8080


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "playground",
        help="serve a page on 127.0.0.1 to write with the model: streamed suggestions, every parameter, "
        "the exact request",
    )
    p.add_argument(
        "--url",
        default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/score",
        help="scoring URL to talk to (default: %(default)s, `distilgpt2-asset serve`)",
    )
    p.add_argument(
        "--key-env",
        metavar="VAR",
        help="environment variable holding the endpoint's key: the playground adds it to each request "
        "(a Bearer token); it never reaches the browser",
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PLAYGROUND_PORT, help="port of the page on 127.0.0.1 (default %(default)s)"
    )
    p.set_defaults(handler=run)


def page_defaults(sample_request: dict) -> dict:
    """The controls' first values: the card's params, and truncate on, so that a text longer than
    the model's context keeps its last tokens instead of a 422. (return_full_text is the page's own:
    always false, since a suggestion continues the text.)"""
    params = {name: value for name, value in sample_request.get("params", {}).items() if name != "return_full_text"}
    return {**params, "truncate": True}


def run(args) -> int:
    from ..errors import AssetError
    from ..playground.server import PageConfig, PlaygroundServer
    from ..playground.target import ScoreTarget
    from ..spec import load_spec

    target = ScoreTarget.from_arguments(args.url, args.key_env)
    try:
        server = PlaygroundServer(
            PageConfig(target, page_defaults(load_spec().sample_request)), DEFAULT_HOST, args.port
        )
    except OSError as exc:
        raise AssetError(f"cannot listen on {DEFAULT_HOST}:{args.port} ({exc.strerror}); pass another --port") from None

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    key = f" (adding the key from ${target.key_env})" if target.key_env else ""
    print(
        f"playground: {server.page_url}  ->  {target.url}{key}\n"
        "open it in a browser (the #token part lets the page use this playground); Ctrl-C stops it",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopping the playground", flush=True)
    finally:
        server.server_close()
    return 0
