"""Text generation as a service: one request goes preprocess -> validate -> predict -> postprocess.

- decode: the JSON object -> a GenerationRequest in the shape it came in (codec; all validation);
- tokenize: each prompt -> a Sequence (GPT-2's own tokenizer, the context limit, a seed per
  sampled sequence, its Stopping object);
- generate: the request's SequenceGroup joins the engine's running batch (scheduler); a whole
  answer waits for its sequences, a streamed one follows their tokens as they are made;
- encode: Completions -> the answer or its events, in the request's shape (codec).
Each step is timed in the debug log. Every request has a deadline (TEXTGEN_REQUEST_TIMEOUT_MS).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import yaml

from . import codec
from .codec import Completion, GenerationRequest, ServedModel
from .engines import make_engine
from .errors import Cancelled, ClientGone, ContextOverflow, EngineFailed, InternalError, ServingError
from .model_files import ModelContent
from .observability import note_group, note_request
from .params import MAX_SEED, GenerationParams, signature_defaults
from .scheduler import Scheduler
from .sequences import CANCELLED, Sequence, SequenceGroup
from .settings import ServingSettings
from .stopping import Stopping, cut_at_stop
from .tasks import Service
from .text_stream import TextStream

logger = logging.getLogger(__name__)


class TextGenerationService:
    task: ClassVar[str] = "text-generation"

    def __init__(
        self, tokenizer, engine, served: ServedModel, settings: ServingSettings, context_size: int, eos_token_id: int
    ):
        self.tokenizer = tokenizer
        self.engine = engine
        self.served = served
        self.settings = settings
        self.context_size = context_size
        self.eos_token_id = eos_token_id
        self.scheduler = Scheduler(engine, settings.max_in_flight)

    @classmethod
    def load(cls, content: ModelContent, settings: ServingSettings | None = None) -> TextGenerationService:
        from tokenizers import Tokenizer

        settings = settings or ServingSettings()
        folder = content.folder
        started = time.perf_counter()
        tokenizer = Tokenizer.from_file(str(folder / "components" / "tokenizer" / "tokenizer.json"))
        config = json.loads((folder / "model" / "config.json").read_text())
        metadata = yaml.safe_load((folder / "MLmodel").read_text()).get("metadata") or {}
        engine = make_engine(content, settings)
        content.recheck()  # the files the engine loaded are still the ones that were hashed
        served = ServedModel(
            name=str(metadata.get("base_model_name") or config.get("_name_or_path") or "gpt2"),
            defaults=signature_defaults(folder),
            max_prompts=settings.max_prompts,
            max_new_tokens=settings.max_new_tokens,
        )
        logger.info("loaded %s with engine %s in %.1f s", folder, engine.name, time.perf_counter() - started)
        return cls(tokenizer, engine, served, settings, int(config["n_positions"]), int(config["eos_token_id"]))

    @property
    def ready(self) -> bool:
        return self.scheduler.alive

    def close(self) -> None:
        self.scheduler.close()

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def predict(self, payload: Any, client_gone: Callable[[], bool] | None = None) -> Any:
        """The answer (a JSON value), or for a streamed request an iterator of server-sent events."""
        started = time.monotonic()
        request = codec.decode(payload, self.served)
        note_request(request)
        group = SequenceGroup(
            self._sequences(request), started + self.settings.deadline_s, streaming=request.params.stream
        )
        validated = time.monotonic()
        self.scheduler.submit(group)
        note_group(group)  # accepted: its figures count
        if request.params.stream:
            return self._stream(request, group, client_gone)
        group.wait(client_gone)
        generated = time.monotonic()
        answer = codec.encode(request, [self._completion(request, group, i) for i in range(len(group))], self.served)
        logger.debug(
            "%d sequences: validate %.1f ms, generate %.1f ms, encode %.1f ms",
            len(group),
            (validated - started) * 1e3,
            (generated - validated) * 1e3,
            (time.monotonic() - generated) * 1e3,
        )
        return answer

    # tokenize ------------------------------------------------------------------------------------
    def _sequences(self, request: GenerationRequest) -> list[Sequence]:
        params = request.params
        stopping = Stopping(params.max_new_tokens, self.eos_token_id, params.stop, self.decode)
        try:
            prompt_ids = [self._prompt_ids(index, prompt, params) for index, prompt in enumerate(request.prompts)]
        except ContextOverflow as overflow:
            raise codec.context_overflow(request, overflow) from None
        return [
            Sequence(ids, params, stopping, self._seed(params, sample))
            for ids in prompt_ids
            for sample in range(request.samples)
        ]

    def _seed(self, params, sample: int) -> int | None:
        if params.greedy:
            return None
        if params.seed is not None:
            return (params.seed + sample) % (MAX_SEED + 1)  # n samples of one seed differ, and repeat
        return secrets.randbelow(MAX_SEED + 1) if self.engine.seeds_every_sequence else None

    def _prompt_ids(self, index: int, text: str, params: GenerationParams) -> list[int]:
        """The prompt's token ids; ContextOverflow unless it fits the context with max_new_tokens (or is truncated)."""
        room = self.context_size - params.max_new_tokens
        if room < 1:
            raise ContextOverflow(None, 0, params.max_new_tokens, self.context_size)
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if len(ids) > room:
            if not params.truncate:
                raise ContextOverflow(index, len(ids), params.max_new_tokens, self.context_size)
            ids = ids[-room:]
        return ids

    # encode ---------------------------------------------------------------------------------------
    def _completion(self, request: GenerationRequest, group: SequenceGroup, index: int) -> Completion:
        sequence = group.sequences[index]
        assert sequence.finish_reason is not None, "a completion is encoded once its sequence finished"
        return Completion(
            index=index,
            prompt=request.prompts[index // request.samples],
            text=cut_at_stop(self.decode(sequence.token_ids), request.params.stop),
            finish_reason=sequence.finish_reason,
            prompt_tokens=len(sequence.prompt_ids),
            completion_tokens=len(sequence.token_ids),
            seed=sequence.seed,
        )

    def _stream(self, request: GenerationRequest, group: SequenceGroup, client_gone) -> Iterator[str]:
        """The answer's events; whatever fails after the headers are sent ends the stream with an error
        event and [DONE], never a cut-off body."""
        events = codec.events(request, self.served)
        texts = [TextStream(self.decode, request.params.stop) for _ in group.sequences]
        completions: list[Completion] = []
        failure: ServingError | None = None
        try:
            for event in events.start():
                yield codec.server_sent(event)
            for update in group.follow(client_gone):
                piece = texts[update.index].feed(update.token_ids)
                if update.finish_reason is None:
                    if piece:
                        yield codec.server_sent(events.piece(update.index, piece))
                    continue
                piece += texts[update.index].finish()
                completions.append(self._completion(request, group, update.index))
                yield codec.server_sent(events.last(completions[-1], piece))
            for event in events.end(sorted(completions, key=lambda c: c.index)):
                yield codec.server_sent(event)
        except ClientGone:
            failure = Cancelled("client closed the connection")
        except ServingError as error:  # e.g. the deadline, after the answer's headers were sent
            failure = error
        except Exception as exc:  # EngineFailed, or a fault of ours: logged here, never shown to the client
            logger.error(
                "a streamed answer failed after its headers were sent", exc_info=not isinstance(exc, EngineFailed)
            )
            failure = InternalError("internal error while scoring; see the server log")
        finally:
            group.end(CANCELLED)  # a client that stops reading stops its generation (no-op when finished)
        if failure is not None:
            yield codec.server_sent(events.error(failure))
        yield codec.server_sent(codec.DONE)


# score.py and batch scoring use it through the Service Protocol: this has mypy check that it is one.
_SERVICE: type[Service] = TextGenerationService
