"""Text classification as a service: {"input_data": [texts]} -> [{"label", "score"}, ...], one per text.

Serves the MLflow models `distilgpt2-asset finetune` writes (transformers flavor, task
text-classification, label names in config.json's id2label). Stages as in the generation
service, each timed in the log: validate, then per batch of settings.max_batch_size tokenize (texts
longer than the model's context are truncated, keeping their start; the tokenizer pads each batch to
its longest text) and classify.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .codec import checked_prompts
from .engines import weights_folder
from .errors import InvalidInput
from .model_files import ModelContent
from .settings import ServingSettings
from .tasks import Service

logger = logging.getLogger(__name__)
INPUT_FIELD = "input_data"


def decode_texts(payload: Any, max_texts: int) -> list[str]:
    """The request's texts: a non-empty list of non-empty strings, at most max_texts (422 otherwise)."""
    unknown = sorted(set(payload) - {INPUT_FIELD})
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; a classification request has only input_data", unknown[0]
        )
    if INPUT_FIELD not in payload:
        raise InvalidInput('input_data is missing: expected {"input_data": ["text", ...]}', INPUT_FIELD)
    texts = checked_prompts(payload[INPUT_FIELD], INPUT_FIELD)
    if len(texts) > max_texts:
        raise InvalidInput(f"input_data holds {len(texts)} texts; the limit per request is {max_texts}", INPUT_FIELD)
    return texts


class TextClassificationService:
    task: ClassVar[str] = "text-classification"

    def __init__(self, tokenizer, model, settings: ServingSettings, device):
        self.tokenizer = tokenizer
        self.model = model
        self.settings = settings
        self.device = device
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def load(cls, content: ModelContent, settings: ServingSettings | None = None) -> TextClassificationService:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModelForSequenceClassification

        settings = settings or ServingSettings()
        mlflow_dir = content.folder
        started = time.perf_counter()
        torch.set_num_threads(settings.thread_count)
        device = torch.device(settings.torch_device())
        model = AutoModelForSequenceClassification.from_pretrained(
            weights_folder(content, settings.cache_dir), use_safetensors=True, trust_remote_code=False
        ).to(device).eval()  # fmt: skip
        content.recheck()
        if model.config.pad_token_id is None:
            raise ValueError(
                f"{mlflow_dir}: config.json has no pad_token_id; the classifier cannot find each text's end"
            )
        tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=model.config.n_positions)
        # On the right: the classifier reads each text's last token before the padding.
        pad_id = model.config.pad_token_id
        tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id))
        logger.info(
            "loaded classifier %s (%d labels) on %s in %.1f s",
            mlflow_dir,
            model.config.num_labels,
            device,
            time.perf_counter() - started,
        )
        return cls(tokenizer, model, settings, device)

    @property
    def ready(self) -> bool:
        return True  # no engine thread: the model answers in the request's own thread

    def close(self) -> None:
        pass

    def predict(self, payload: Any, client_gone: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
        started = time.perf_counter()
        texts = decode_texts(payload, self.settings.max_prompts)
        validated = time.perf_counter()
        results, tokenizing = [], 0.0
        size = self.settings.max_batch_size
        for start in range(0, len(texts), size):
            batch_started = time.perf_counter()
            encodings = self.tokenizer.encode_batch(texts[start : start + size], add_special_tokens=False)
            tokenizing += time.perf_counter() - batch_started
            results += self._classify(encodings)
        done = time.perf_counter()
        logger.debug(
            "%d texts: validate %.1f ms, tokenize %.1f ms, classify %.1f ms",
            len(texts), (validated - started) * 1e3, tokenizing * 1e3, (done - validated - tokenizing) * 1e3,
        )  # fmt: skip
        return results

    def _classify(self, encodings) -> list[dict[str, Any]]:
        """One batch of tokenizer encodings, padded alike, -> a label and score per text."""
        import torch

        input_ids = torch.tensor([e.ids for e in encodings], device=self.device)
        mask = torch.tensor([e.attention_mask for e in encodings], device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits
        scores, best = torch.softmax(logits.float(), dim=-1).max(dim=-1)
        return [
            {"label": self.labels[i], "score": round(float(s), 6)}
            for i, s in zip(best.tolist(), scores.tolist(), strict=True)
        ]


# score.py and batch scoring use it through the Service Protocol: this has mypy check that it is one.
_SERVICE: type[Service] = TextClassificationService
