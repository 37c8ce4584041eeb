"""Finetuning the tiny model on your own text (text generation): learns the domain, exports a model
shaped like the base build, resumes exactly, refuses bad input before training."""

from __future__ import annotations

import json

import pytest
import yaml
from safetensors.torch import load_file

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.finetune import FinetuneSettings, checkpoints, finetune, register_finetuned
from distilgpt2_asset.finetune.data import DatasetError, load_texts
from distilgpt2_asset.finetune.generation import pack
from distilgpt2_asset.finetune.model import load_tokenizer, locate_base
from distilgpt2_asset.provenance import require_pinned
from distilgpt2_scoring.model_files import open_model, verify_manifest

from .conftest import WRITER_SETTINGS, tickets, write_jsonl

SETTINGS = FinetuneSettings(**WRITER_SETTINGS)


def mlmodel(folder) -> dict:
    return yaml.safe_load((folder / "MLmodel").read_text())


def test_held_out_tickets_reach_a_perplexity_at_least_30_percent_below_the_base(finetuned_writer):
    perplexity = finetuned_writer.metrics["perplexity"]
    before, after = perplexity["before"], perplexity["after"]
    assert after["perplexity"] <= 0.7 * before["perplexity"]
    assert before["tokens_scored"] == after["tokens_scored"] > 0  # the same held-out tokens, before and after
    # evaluate's perplexity of the exported model is the loop's validation figure for the best weights
    assert after["perplexity"] == pytest.approx(finetuned_writer.metrics["best"]["perplexity"], rel=1e-3)
    assert json.loads((finetuned_writer.output / "metrics.json").read_text()) == finetuned_writer.metrics
    assert (finetuned_writer.output / "training-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_output_is_shaped_like_the_base_build_with_its_own_digest(finetuned_writer, tiny_mlflow_model):
    output, base = mlmodel(finetuned_writer.output), mlmodel(tiny_mlflow_model)
    assert output["flavors"]["transformers"]["task"] == "text-generation"
    assert output["flavors"]["transformers"]["pipeline_model_type"] == "GPT2LMHeadModel"
    assert output["signature"] == base["signature"]
    metadata = output["metadata"]
    assert metadata["is_finetuned_model"] is True and metadata["finetuning_task"] == "text-generation"
    assert {k: metadata[k] for k in ("base_model_name", "base_model_task", "azureml.base_image")} == {
        k: base["metadata"][k] for k in ("base_model_name", "base_model_task", "azureml.base_image")
    }
    assert metadata["base_content_sha256"] == open_model(tiny_mlflow_model).digest
    assert (finetuned_writer.output / "requirements.txt").read_text() == (
        tiny_mlflow_model / "requirements.txt"
    ).read_text()
    files = verify_manifest(finetuned_writer.output)
    assert any(name.startswith("engines/openvino-int8/") for name in files)  # built, as build does
    assert {"metrics.json", "training-curve.png"} <= set(files)
    assert open_model(finetuned_writer.output).digest != metadata["base_content_sha256"]


def test_lora_is_merged_and_changes_only_the_attention_projections(finetuned_writer, tiny_mlflow_model):
    tuned = load_file(finetuned_writer.output / "model" / "model.safetensors")
    base = load_file(tiny_mlflow_model / "model" / "model.safetensors")
    assert tuned.keys() == base.keys() and not any("lora" in key for key in tuned)
    changed = {key for key in tuned if not (tuned[key] == base[key]).all()}
    assert changed and all(key.endswith("attn.c_attn.weight") for key in changed)


def test_a_finetuned_model_is_never_taken_for_the_pinned_asset(finetuned_writer, asset_spec):
    with pytest.raises(AssetError, match="a text-generation finetune of"):
        require_pinned(asset_spec, finetuned_writer.output)


def test_it_registers_under_its_own_name_with_the_base_recorded(finetuned_writer, asset_spec, isolated_home):
    from distilgpt2_asset.registry import LocalRegistry

    first = register_finetuned(asset_spec, finetuned_writer.output)
    again = register_finetuned(asset_spec, finetuned_writer.output)
    assert (first.name, first.outcome, again.outcome) == ("distilgpt2-finetuned", "created", "unchanged")
    version = LocalRegistry().client.get_model_version(first.name, first.mlflow_version)
    assert version.tags["task"] == "text-generation" and version.tags["base_model"] == asset_spec.name
    base_digest = mlmodel(finetuned_writer.output)["metadata"]["base_content_sha256"]
    assert version.tags["properties/base_content_sha256"] == base_digest
    assert version.tags["content_sha256"] == open_model(finetuned_writer.output).digest


def test_a_kill_inside_the_epoch_resumes_to_the_same_weights(
    finetuned_writer, asset_spec, writer_inputs, tmp_path, monkeypatch
):
    inputs = writer_inputs(tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints")
    save = checkpoints.save_checkpoint

    def killed_after_first_checkpoint(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_checkpoint", killed_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        finetune(asset_spec, inputs, SETTINGS)
    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    state = checkpoints.read_state(inputs.checkpoint_dir)
    assert state["progress"]["step"] == 3 < finetuned_writer.metrics["steps"]  # inside the only epoch

    resumed = finetune(
        asset_spec, writer_inputs(tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints", resume=True), SETTINGS
    )
    assert resumed.metrics["history"] == finetuned_writer.metrics["history"]
    weights = "model/model.safetensors"
    assert (resumed.output / weights).read_bytes() == (finetuned_writer.output / weights).read_bytes()


# bad input: a clear error naming the file (and line), before any training --------------------------


@pytest.mark.parametrize(
    "content, words",
    [
        (b'{"text": "fine"}\n{"text": "  "}\n', r"train\.jsonl: line 2: empty text in 'text'"),
        (b'{"text": "fine"}\n{"body": "no text"}\n', r"train\.jsonl: line 2: no 'text' column \(columns: body"),
        (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', r"train\.jsonl: not UTF-8 text \(byte 0xe9 on line 2\)"),
        (b"", r"train\.jsonl: no rows; expected one JSON object with 'text' per line"),
        (b'{"text": "too short"}\n', r"train\.jsonl: \d+ tokens, too few for one sequence of 32 tokens"),
    ],
)
def test_bad_training_text_is_refused_before_training(content, words, asset_spec, writer_inputs, tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_bytes(content)
    inputs = writer_inputs(tmp_path / "model", train=train, validation=None)
    with pytest.raises(DatasetError, match=words):
        finetune(asset_spec, inputs, SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]  # nothing written


def test_an_empty_text_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text(" \n")
    with pytest.raises(DatasetError, match=r"notes\.txt: empty text"):
        load_texts(tmp_path / "notes.txt")


def test_a_folder_of_text_files_is_read_in_name_order_and_packed_end_to_end(asset_spec, tiny_model_dir, tmp_path):
    (tmp_path / "b.txt").write_text("the river runs past the mill")
    (tmp_path / "a.jsonl").write_text('{"text": "the quick brown fox"}\n')
    texts = load_texts(tmp_path)
    assert texts.texts == ("the quick brown fox", "the river runs past the mill")
    tokenizer = load_tokenizer(locate_base(asset_spec, str(tiny_model_dir), None))
    eos = [tokenizer.eos_token_id]
    ids = (
        tokenizer("the quick brown fox")["input_ids"]
        + eos
        + tokenizer("the river runs past the mill")["input_ids"]
        + eos
    )
    assert pack(tokenizer, texts, 4) == [ids[i : i + 4] for i in range(0, len(ids) - 3, 4)]  # the remainder dropped


def test_too_few_sequences_to_hold_one_out_asks_for_more_text_or_a_validation_file(asset_spec, writer_inputs, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", tickets(2, 3))  # one sequence of 32 tokens
    with pytest.raises(DatasetError, match=r"too few to hold out a validation share .* --validation FILE"):
        finetune(asset_spec, writer_inputs(tmp_path / "model", train=train, validation=None), SETTINGS)


# serving: the finetuned folder as `serve --model DIR` serves it ------------------------------------

PROMPTS = ["Ticket 300: the printer in", "Status: resolved, we", "I believe the meaning of life is"]


def transformers_greedy(folder, prompt: str, max_new_tokens: int) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder / "model", use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder / "components" / "tokenizer")
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.mark.slow
def test_it_serves_on_the_openvino_engine_with_greedy_parity_to_transformers_and_every_api_feature(
    finetuned_writer, tmp_path
):
    import requests

    from distilgpt2_asset.serve import free_port, start_server

    greedy = {"do_sample": False, "max_new_tokens": 16, "return_full_text": False}
    expected = [transformers_greedy(finetuned_writer.output, prompt, 16) for prompt in PROMPTS]
    env = {"TEXTGEN_ENGINE": "openvino", "TEXTGEN_CACHE_DIR": str(tmp_path / "cache")}
    with open(tmp_path / "azmlinfsrv.log", "w") as log:
        server = start_server(finetuned_writer.output, port=free_port(), threads=4, env=env, log=log)
        try:

            def post(body, **kwargs):
                return requests.post(server.score_url, json=body, timeout=120, **kwargs)

            # The published shape strips the generated text as mlflow.transformers does; a stream and
            # OpenAI's text keep it as made.
            assert post({"input_data": PROMPTS, "params": greedy}).json() == [text.strip() for text in expected]
            details = post({"input_data": PROMPTS[:1], "params": {**greedy, "details": True}}).json()[0]
            assert details["generated_text"] == expected[0].strip() and details["finish_reason"] in ("length", "eos")
            streamed = post({"input_data": PROMPTS[:1], "params": {**greedy, "stream": True}}, stream=True)
            lines = [line[6:] for line in streamed.iter_lines(decode_unicode=True) if line.startswith("data: ")]
            assert lines[-1] == "[DONE]"
            assert "".join(json.loads(line).get("text", "") for line in lines[:-1]) == expected[0]
            openai = post({"prompt": PROMPTS[0], "max_tokens": 16, "temperature": 0}).json()
            assert openai["choices"][0]["text"] == expected[0]
        finally:
            assert server.stop() == 0
    assert "Traceback" not in (tmp_path / "azmlinfsrv.log").read_text()


def test_it_publishes_like_the_base_under_its_own_name_once_its_base_is_allowed(
    finetuned_writer, asset_spec, isolated_home, capsys
):
    from distilgpt2_asset.cli import main

    folder = str(finetuned_writer.output)
    assert main(["publish", "--model", folder, "--dry-run"]) != 0  # the tiny model is not the pinned distilgpt2
    assert "a text-generation finetune of" in capsys.readouterr().err
    assert main(["publish", "--model", folder, "--allow-unpinned", "--dry-run"]) == 0
    payload = json.loads(capsys.readouterr().out)
    digest = open_model(finetuned_writer.output).digest
    assert (payload["name"], payload["version"]) == ("distilgpt2-finetuned", digest[:12])
    assert payload["properties"]["content_sha256"] == digest
    assert (
        payload["properties"]["base_content_sha256"]
        == mlmodel(finetuned_writer.output)["metadata"]["base_content_sha256"]
    )
    assert payload["tags"]["task"] == "text-generation" and payload["tags"]["base_model"] == asset_spec.name
    assert main(["publish", "--model", folder, "--allow-unpinned"]) == 0
    assert capsys.readouterr().out.startswith(
        f"created: distilgpt2-finetuned {digest[:12]} as models:/distilgpt2-finetuned/1"
    )
