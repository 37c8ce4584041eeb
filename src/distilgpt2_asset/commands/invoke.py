"""`invoke`: post a request file to a scoring URL (the local server by default) and print the answer.

With --stream the request asks for server-sent events and each piece of text is printed as it
arrives (prompts in turn, a line per prompt's finish reason and token counts at the end).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import AssetError
from ..event_stream import StreamCut, events
from ..local_server import DEFAULT_HOST
from ..score_url import ScoreUrl, parse_score_url
from ..serve import DEFAULT_PORT


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("invoke", help="send a scoring request and print the answer")
    p.add_argument("--request-file", type=Path, help="JSON request (default: the model card's sample request)")
    p.add_argument(
        "--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/score", help="scoring URL (default: %(default)s)"
    )
    p.add_argument(
        "--key-env", metavar="VAR", help="environment variable holding the endpoint's key (sent as a Bearer token)"
    )
    p.add_argument("--stream", action="store_true", help="ask for the answer as it is made and print it as it arrives")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer (default: %(default)s)")
    p.set_defaults(handler=run)


def _request(path: Path | None, stream: bool) -> dict:
    if path is None:
        from ..spec import load_spec

        body = load_spec().sample_request
    else:
        try:
            body = json.loads(path.read_text())
        except OSError as exc:
            raise AssetError(f"cannot read the request file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise AssetError(f"{path} is not JSON: {exc}") from None
    if stream and isinstance(body, dict):  # OpenAI's shape streams at the top level, the published one in params
        if "prompt" in body:
            body = {**body, "stream": True}
        else:
            body = {**body, "params": {**(body.get("params") or {}), "stream": True}}
    return body


def _headers(key_env: str | None, target: ScoreUrl, url: str) -> dict[str, str]:
    """The request's headers; with key_env, the key, which goes only over https or to this machine."""
    headers = {"Content-Type": "application/json"}
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            raise AssetError(f"--key-env {key_env}: that environment variable is not set")
        target.require_safe_for_key("--url", url)
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _print_events(response) -> None:
    """Each event's text as it arrives; the finish reasons and token counts once a prompt ends."""
    endings: list[dict] = []
    try:
        for event in events(response.iter_lines()):
            _print_event(event, endings)
    except StreamCut as exc:
        raise AssetError(f"the answer stopped: {exc}") from None
    print()
    for ending in endings:
        print(json.dumps(ending), file=sys.stderr)


def _print_event(event: dict, endings: list[dict]) -> None:
    if "error" in event:
        raise AssetError(f"the answer stopped: {event['error']}")
    choice = event["choices"][0] if event.get("choices") else event  # OpenAI chunks or ours
    print(choice.get("text", ""), end="", flush=True)
    if choice.get("finish_reason"):
        endings.append(
            {
                "index": choice.get("index", 0),
                "finish_reason": choice["finish_reason"],
                **({"usage": event["usage"]} if "usage" in event else {}),
            }
        )


def run(args) -> int:
    import requests

    target = parse_score_url(args.url)
    headers = _headers(args.key_env, target, args.url)
    body = _request(args.request_file, args.stream)
    try:  # to the URL as parsed (the https rule read that parse), never redirected elsewhere with the key
        response = requests.post(
            target.url, json=body, headers=headers, timeout=args.timeout, stream=args.stream, allow_redirects=False
        )
    except requests.ConnectionError:
        raise AssetError(f"no server answers at {args.url}; start one with `distilgpt2-asset serve`") from None
    except requests.Timeout:
        raise AssetError(f"no answer from {args.url} within {args.timeout:.0f} s") from None
    with response:
        if response.status_code == 200 and response.headers.get("Content-Type", "").startswith("text/event-stream"):
            _print_events(response)
            return 0
        try:
            shown = json.dumps(response.json(), indent=2, ensure_ascii=False)
        except ValueError:
            shown = response.text
    if response.status_code != 200:
        raise AssetError(f"HTTP {response.status_code} from {args.url}: {shown}")
    print(shown)
    return 0
