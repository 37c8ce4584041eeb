"""Text generation as a service: payload in, one string per prompt out; the same path the HTTP server uses.

predict() runs the KServe-style stages, each timed in the log: decode + validate (codec,
params), tokenize + check the context limit, generate (batcher -> engine), encode.
Several prompts in one payload are generated in shared batches, so callers with many prompts
(evaluation) should send them in requests of up to settings.max_prompts.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from .batcher import Batcher
from .codec import decode_request, encode_texts
from .connection import client_gone
from .engines import make_engine
from .engines.base import Engine, Prompt
from .errors import InvalidInput
from .params import GenerationParams, signature_defaults
from .settings import ServingSettings
from .stopping import StopStrings

logger = logging.getLogger(__name__)


class TextGenerationService:
    def __init__(self, tokenizer, engine: Engine, defaults: GenerationParams, settings: ServingSettings, context_size: int):
        self.tokenizer = tokenizer
        self.engine = engine
        self.defaults = defaults
        self.settings = settings
        self.context_size = context_size
        self.batcher = Batcher(engine, settings.max_batch_size, settings.max_queue, settings.batch_wait_ms / 1000)

    @classmethod
    def load(cls, mlflow_dir: Path, settings: ServingSettings | None = None) -> "TextGenerationService":
        from tokenizers import Tokenizer

        settings = settings or ServingSettings()
        mlflow_dir = Path(mlflow_dir)
        started = time.perf_counter()
        tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))
        config = json.loads((mlflow_dir / "model" / "config.json").read_text())
        engine = make_engine(mlflow_dir, settings)
        logger.info(
            "loaded %s with engine %s on %s in %.1f s",
            mlflow_dir, engine.name, settings.resolved_device(), time.perf_counter() - started,
        )  # fmt: skip
        return cls(tokenizer, engine, signature_defaults(mlflow_dir), settings, int(config["n_positions"]))

    def close(self) -> None:
        self.batcher.close()

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def predict(self, payload: Any) -> list[str]:
        timings = {}
        started = time.perf_counter()
        request = decode_request(
            payload, self.defaults, max_prompts=self.settings.max_prompts, max_new_tokens=self.settings.max_new_tokens
        )
        prompts = [self._prompt(i, text, request.params) for i, text in enumerate(request.prompts)]
        timings["validate"] = time.perf_counter() - started
        generations = self.batcher.submit(prompts).wait(client_gone.get())
        timings["generate"] = time.perf_counter() - started - timings["validate"]
        texts = encode_texts(request, [self.decode(g.token_ids) for g in generations])
        timings["total"] = time.perf_counter() - started
        logger.debug("%d prompts, %s", len(prompts), ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in timings.items()))
        return texts

    def _prompt(self, index: int, text: str, params: GenerationParams) -> Prompt:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        room = self.context_size - params.max_new_tokens
        if room < 1:
            raise InvalidInput(
                f"params.max_new_tokens {params.max_new_tokens} leaves no room for a prompt in the model's "
                f"{self.context_size}-token context",
                "params.max_new_tokens",
            )
        if len(ids) > room:
            if not params.truncate:
                raise InvalidInput(
                    f"input_data[{index}] is {len(ids)} tokens; with max_new_tokens {params.max_new_tokens} that is "
                    f"over the model's {self.context_size}-token limit. Shorten the prompt, lower max_new_tokens, "
                    "or set params.truncate to true to keep only the prompt's last tokens",
                    f"input_data[{index}]",
                )
            ids = ids[-room:]
        stop = StopStrings(self.decode, params.stop) if params.stop else None
        return Prompt(ids, params, stop)
