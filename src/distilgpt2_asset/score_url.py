"""A scoring URL, parsed once by the parser that sends the request (urllib3's), and where a key may go.

Two URL parsers disagree on inputs such as `http://192.0.2.2:5094\\@127.0.0.1/score` (urllib.parse
reads the host 127.0.0.1, urllib3 connects to 192.0.2.2), so a rule checked with one and a request
sent with the other can be made to disagree. Here urllib3 parses the URL, the rule reads that
parse, and the request goes to the URL rebuilt from it: what is checked is what is connected to.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

from .errors import AssetError

LOOPBACK_NAMES = ("localhost",)
EXAMPLE = "https://NAME.REGION.inference.ml.azure.com/score"


@dataclass(frozen=True)
class ScoreUrl:
    scheme: str  # http | https
    host: str  # as urllib3 connects to it ("[::1]" for an IPv6 address)
    port: int | None
    path: str
    query: str | None

    @property
    def url(self) -> str:
        """The URL requests go to: rebuilt from the parse the rules read."""
        return Url(scheme=self.scheme, host=self.host, port=self.port, path=self.path, query=self.query).url

    @property
    def loopback(self) -> bool:
        """This machine: localhost or a loopback address."""
        host = self.host.strip("[]").lower()
        if host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def require_safe_for_key(self, flag: str, original: str) -> None:
        """A key goes only over https, or over http to this machine (a local server, a test)."""
        if self.scheme == "http" and not self.loopback:
            raise AssetError(
                f"{flag} {original}: the key would cross the network unencrypted; use the endpoint's https:// URL "
                f"(the request would go to {self.host})"
            )


def parse_score_url(text: str, flag: str = "--url") -> ScoreUrl:
    """An http(s) URL with a host and no user info (credentials never travel in a URL)."""
    refusal = AssetError(f"{flag} {text}: expected an http:// or https:// scoring URL, e.g. {EXAMPLE}")
    try:
        parsed = parse_url(text)
    except LocationParseError:
        raise refusal from None
    if parsed.scheme not in ("http", "https") or not parsed.host or "://" not in text:
        raise refusal
    if parsed.auth is not None:
        raise AssetError(f"{flag} {text}: a URL with user info (user@host) is refused; pass a key with --key-env")
    return ScoreUrl(parsed.scheme, parsed.host, parsed.port, parsed.path or "/", parsed.query)
