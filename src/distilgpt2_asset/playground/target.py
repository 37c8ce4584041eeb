"""The /score URL the playground forwards to, and the key it adds: the only place the key lives.

The key is read from an environment variable once, kept here, and only ever written into the
Authorization header of a request to the target; its repr and every message leave it out.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import AssetError

LOOPBACK_NAMES = ("localhost",)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ScoreTarget:
    url: str
    key_env: str | None = None
    key: str | None = field(default=None, repr=False)

    @classmethod
    def from_arguments(cls, url: str, key_env: str | None) -> ScoreTarget:
        """A checked target: an http(s) URL; with key_env, a key that is set and only goes over
        https, or over http to this machine (a local server, a test)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AssetError(
                f"--url {url}: expected an http:// or https:// scoring URL, e.g. https://NAME.REGION.inference.ml.azure.com/score"
            )
        if key_env is None:
            return cls(url)
        key = os.environ.get(key_env)
        if not key:
            raise AssetError(f"--key-env {key_env}: that environment variable is not set")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise AssetError(
                f"--url {url}: the key would cross the network unencrypted; use the endpoint's https:// URL"
            )
        return cls(url, key_env, key)

    @property
    def local(self) -> bool:
        """A server on this machine (`distilgpt2-asset serve`)."""
        return _is_loopback(urlsplit(self.url).hostname or "")

    def headers(self) -> dict[str, str]:
        """The headers of a forwarded request: the body's type, and the key when there is one."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def described(self) -> dict:
        """What the page may know of the target (never the key)."""
        return {"score_url": self.url, "key_env": self.key_env}
