"""Finetuning distilgpt2 for text classification or on your own text (text generation), LoRA by
default; the command is `distilgpt2-asset finetune [--task text-generation]`.

run.py drives a run (settings, the steps both tasks share, the classifier's run, registration);
generation.py is the text-generation run (packing, held-out perplexity, export like the base build);
data.py reads and validates the data; model.py loads the base and exports the classifier; loop.py
trains and evaluates; checkpoints.py writes safetensors checkpoints and resumes exactly; runtime.py
sets up accelerate (devices, processes) and says which of DeepSpeed and ORT cannot apply.
"""

from importlib import import_module
from typing import Any

# Where each public name lives; loaded on first use, so that `finetune.release` (publish, register)
# imports no torch.
_PUBLIC = {
    **dict.fromkeys(
        ("TASKS", "REGISTERED_SUFFIX", "REGISTERED_SUFFIXES", "finetuned_release", "register_finetuned"), "release"
    ),
    **dict.fromkeys(
        (
            "CURVE_FILE",
            "LEARNING_RATE",
            "METRICS_FILE",
            "FinetuneInputs",
            "FinetuneResult",
            "FinetuneSettings",
            "finetune",
        ),
        "run",
    ),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
