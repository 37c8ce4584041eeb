"""Our scoring on a folder made the way Microsoft publishes distilgpt2: it starts, serves the
card's request, says what it serves."""

from __future__ import annotations

import pytest
import requests

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.serve import free_port, start_server
from distilgpt2_scoring.model_files import open_model

pytestmark = pytest.mark.slow


def serve(model, tmp_path, engine_cache, **env):
    log_path = tmp_path / "azmlinfsrv.log"
    log = open(log_path, "w")
    try:
        server = start_server(
            model, port=free_port(), threads=4, env={"TEXTGEN_CACHE_DIR": str(engine_cache), **env}, log=log
        )
    except BaseException:
        log.close()
        raise
    return server, log, log_path


def test_the_published_layout_serves_the_card_request_and_logs_the_digest_to_pin(
    published_model, asset_spec, tmp_path, engine_cache
):
    digest = open_model(published_model).digest
    server, log, log_path = serve(published_model, tmp_path, engine_cache)
    try:
        with requests.post(server.score_url, json=asset_spec.sample_request, timeout=120) as response:
            assert response.status_code == 200
            [text] = response.json()
        assert text.startswith(asset_spec.sample_request["input_data"][0])
    finally:
        assert server.stop() == 0
        log.close()
    served = log_path.read_text()
    assert f"content sha256 {digest}; not pinned: set TEXTGEN_EXPECTED_CONTENT_SHA256={digest}" in served
    assert "carries no sha256 manifest" in served and "Traceback" not in served
    if (published_model / "mlflow_model_folder" / "model" / "pytorch_model.bin").is_file():
        assert "converting for the safetensors engine files" in served  # read with weights_only=True, once


def test_a_pinned_digest_starts_and_a_wrong_one_is_refused_naming_both(published_model, tmp_path, engine_cache):
    digest = open_model(published_model).digest
    server, log, log_path = serve(published_model, tmp_path, engine_cache, TEXTGEN_EXPECTED_CONTENT_SHA256=digest)
    assert server.stop() == 0
    log.close()
    assert f"content sha256 {digest}, as pinned" in log_path.read_text()
    wrong = "ab" * 32
    (tmp_path / "wrong").mkdir()
    with pytest.raises(AssetError, match="exited with code 3 before becoming healthy"):
        serve(published_model, tmp_path / "wrong", engine_cache, TEXTGEN_EXPECTED_CONTENT_SHA256=wrong)
    refused = (tmp_path / "wrong" / "azmlinfsrv.log").read_text()
    assert f"model content sha256 {digest} is not the expected {wrong}" in refused
