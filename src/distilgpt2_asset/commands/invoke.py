"""`invoke`: post a request file to a scoring URL (the local server by default) and print the answer."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import AssetError
from ..local_server import DEFAULT_HOST
from ..serve import DEFAULT_PORT


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("invoke", help="send a scoring request and print the answer")
    p.add_argument("--request-file", type=Path, help="JSON request (default: the model card's sample request)")
    p.add_argument("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/score", help="scoring URL (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer (default: %(default)s)")
    p.set_defaults(handler=run)


def _request_body(path: Path | None) -> bytes:
    if path is None:
        from ..spec import load_spec

        return json.dumps(load_spec().sample_request).encode()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AssetError(f"cannot read the request file {path}: {exc.strerror}") from None


def run(args) -> int:
    import requests

    body = _request_body(args.request_file)
    try:
        response = requests.post(args.url, data=body, headers={"Content-Type": "application/json"}, timeout=args.timeout)
    except requests.ConnectionError:
        raise AssetError(f"no server answers at {args.url}; start one with `distilgpt2-asset serve`") from None
    except requests.Timeout:
        raise AssetError(f"no answer from {args.url} within {args.timeout:.0f} s") from None
    try:
        shown = json.dumps(response.json(), indent=2, ensure_ascii=False)
    except ValueError:
        shown = response.text
    if response.status_code != 200:
        raise AssetError(f"HTTP {response.status_code} from {args.url}: {shown}")
    print(shown)
    return 0
