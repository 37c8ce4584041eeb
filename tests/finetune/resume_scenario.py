"""A finetune stopped in every process right after its first checkpoint (as when a node is preempted),
then resumed, beside the same finetune run uninterrupted. test_finetune.py runs it in its own
process and under torchrun with two processes:

    torchrun --nproc_per_node 2 tests/finetune/resume_scenario.py RESULT.json WORK SOURCE TRAIN VALIDATION
"""

from __future__ import annotations

import hashlib
import json
import sys
from contextlib import contextmanager
from pathlib import Path

# The first checkpoint falls inside an epoch (48 examples in batches of 4: 12 or 6 steps per epoch for one or
# two processes), so a resume skips the epoch's first batches and needs each process's own RNG state (dropout).
SETTINGS = dict(epochs=2, batch_size=4, learning_rate=5e-3, eval_steps=4, seed=3, apply_lora=True, lora_dropout=0.1)
FIRST_CHECKPOINT = 4


class Preempted(Exception):
    pass


@contextmanager
def stopped_after_first_checkpoint():
    """Every process stops right after the first checkpoint (the loop's barrier after writing it)."""
    from accelerate import Accelerator

    wait = Accelerator.wait_for_everyone

    def stop(self):
        wait(self)
        raise Preempted

    Accelerator.wait_for_everyone = stop
    try:
        yield
    finally:
        Accelerator.wait_for_everyone = wait


def run(work: Path, source: str, train: Path, validation: Path) -> dict | None:
    """{stopped_at, processes, uninterrupted/resumed: {history, weights_sha256}}; None on processes
    other than rank 0."""
    from distilgpt2_asset.finetune import FinetuneInputs, FinetuneSettings, checkpoints, finetune
    from distilgpt2_asset.spec import load_spec

    spec, settings = load_spec(), FinetuneSettings(**SETTINGS)

    def inputs(name: str, resume: bool = False) -> FinetuneInputs:
        return FinetuneInputs(
            train=train, validation=validation, output=work / name, source=source,
            checkpoint_dir=work / f"{name}.checkpoints", resume=resume,
        )  # fmt: skip

    uninterrupted = finetune(spec, inputs("uninterrupted"), settings)
    with stopped_after_first_checkpoint():
        try:
            finetune(spec, inputs("resumed"), settings)
        except Preempted:
            pass
    stopped_at = checkpoints.read_state(work / "resumed.checkpoints")["progress"]["step"]
    resumed = finetune(spec, inputs("resumed", resume=True), settings)
    if resumed.output is None:
        return None
    return {
        "stopped_at": stopped_at,
        "processes": _processes(),
        **{name: _outcome(result) for name, result in (("uninterrupted", uninterrupted), ("resumed", resumed))},
    }


def _processes() -> int:
    from accelerate import PartialState

    return PartialState().num_processes


def _outcome(result) -> dict:
    weights = (result.output / "model" / "model.safetensors").read_bytes()
    return {"history": result.metrics["history"], "weights_sha256": hashlib.sha256(weights).hexdigest()}


if __name__ == "__main__":
    result_file, work, source, train, validation = sys.argv[1:]
    outcome = run(Path(work), source, Path(train), Path(validation))
    if outcome is not None:
        Path(result_file).write_text(json.dumps(outcome))
