"""The scoring URL and its key: where the key may go, and where it never shows."""

from __future__ import annotations

import pytest

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.playground.target import ScoreTarget

KEY = "test-key-0c41aa"


@pytest.fixture
def key_in_env(monkeypatch):
    monkeypatch.setenv("ENDPOINT_KEY", KEY)
    return "ENDPOINT_KEY"


def test_the_key_goes_into_the_authorization_header_and_nowhere_else(key_in_env):
    target = ScoreTarget.from_arguments("https://my-endpoint.westeurope.inference.ml.azure.com/score", key_in_env)
    assert target.headers()["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(target) and KEY not in str(target.described())
    assert target.described() == {
        "score_url": "https://my-endpoint.westeurope.inference.ml.azure.com/score",
        "key_env": "ENDPOINT_KEY",
    }


def test_without_a_key_variable_there_is_no_authorization():
    target = ScoreTarget.from_arguments("http://127.0.0.1:5001/score", None)
    assert "Authorization" not in target.headers() and target.described()["key_env"] is None


def test_a_key_variable_that_is_not_set_is_an_error_naming_it(monkeypatch):
    monkeypatch.delenv("ENDPOINT_KEY", raising=False)
    with pytest.raises(AssetError, match="--key-env ENDPOINT_KEY: that environment variable is not set"):
        ScoreTarget.from_arguments("https://x.inference.ml.azure.com/score", "ENDPOINT_KEY")


@pytest.mark.parametrize(
    "url", ["http://my-endpoint.westeurope.inference.ml.azure.com/score", "http://10.0.0.4:5001/score"]
)
def test_a_key_never_crosses_the_network_unencrypted(key_in_env, url):
    with pytest.raises(AssetError, match="unencrypted; use the endpoint's https:// URL"):
        ScoreTarget.from_arguments(url, key_in_env)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5001/score", "http://localhost:5001/score", "http://[::1]:5001/score"]
)
def test_a_key_may_go_over_http_to_this_machine(key_in_env, url):
    assert ScoreTarget.from_arguments(url, key_in_env).key == KEY


@pytest.mark.parametrize("url", ["127.0.0.1:5001/score", "ftp://host/score", "https:///score"])
def test_a_url_that_is_not_http_is_an_error(url):
    with pytest.raises(AssetError, match="expected an http:// or https:// scoring URL"):
        ScoreTarget.from_arguments(url, None)


def test_one_parser_decides_the_target_and_the_https_rule(key_in_env):
    """The attack: urllib.parse read the host 127.0.0.1 (so the key could go over http), while the proxy's
    urllib3 connected to 192.0.2.2. Nothing here connects anywhere."""
    url = "http://192.0.2.2:5094\\@127.0.0.1/score"
    target = ScoreTarget.from_arguments(url, None)
    assert (target.parsed.host, target.parsed.port, target.local) == ("192.0.2.2", 5094, False)
    assert target.url == "http://192.0.2.2:5094/%5C@127.0.0.1/score"  # where a request would go: the host checked
    with pytest.raises(
        AssetError, match="unencrypted; use the endpoint's https:// URL .the request would go to 192.0.2.2"
    ):
        ScoreTarget.from_arguments(url, key_in_env)


def test_user_info_in_the_url_is_refused(key_in_env):
    with pytest.raises(AssetError, match="user info"):
        ScoreTarget.from_arguments("https://user:secret@127.0.0.1/score", None)
