"""The /score URL the playground forwards to, and the key it adds: the only place the key lives.

The key is read from an environment variable once, kept here, and only ever written into the
Authorization header of a request to the target; its repr and every message leave it out. The URL
is parsed once (score_url: the parser that sends the request decides the https rule too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import AssetError
from ..score_url import ScoreUrl, parse_score_url


@dataclass(frozen=True)
class ScoreTarget:
    parsed: ScoreUrl
    key_env: str | None = None
    key: str | None = field(default=None, repr=False)

    @classmethod
    def from_arguments(cls, url: str, key_env: str | None) -> ScoreTarget:
        """A checked target: an http(s) URL; with key_env, a key that is set and only goes over
        https, or over http to this machine (a local server, a test)."""
        parsed = parse_score_url(url)
        if key_env is None:
            return cls(parsed)
        key = os.environ.get(key_env)
        if not key:
            raise AssetError(f"--key-env {key_env}: that environment variable is not set")
        parsed.require_safe_for_key("--url", url)
        return cls(parsed, key_env, key)

    @property
    def url(self) -> str:
        """Where requests go: the URL as parsed."""
        return self.parsed.url

    @property
    def local(self) -> bool:
        """A server on this machine (`distilgpt2-asset serve`)."""
        return self.parsed.loopback

    def headers(self) -> dict[str, str]:
        """The headers of a forwarded request: the body's type, and the key when there is one."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def described(self) -> dict:
        """What the page may know of the target (never the key)."""
        return {"score_url": self.url, "key_env": self.key_env}
