"""Finetuning distilgpt2 for text classification or on your own text (text generation), LoRA by
default; the command is `distilgpt2-asset finetune [--task text-generation]`.

run.py drives a run (settings, the steps both tasks share, the classifier's run, registration);
generation.py is the text-generation run (packing, held-out perplexity, export like the base build);
data.py reads and validates the data; model.py loads the base and exports the classifier; loop.py
trains and evaluates; checkpoints.py writes safetensors checkpoints and resumes exactly; runtime.py
sets up accelerate (devices, processes) and says which of DeepSpeed and ORT cannot apply.
"""

from .run import (
    CURVE_FILE,
    LEARNING_RATE,
    METRICS_FILE,
    REGISTERED_SUFFIX,
    REGISTERED_SUFFIXES,
    TASKS,
    FinetuneInputs,
    FinetuneResult,
    FinetuneSettings,
    finetune,
    finetuned_release,
    register_finetuned,
)

__all__ = [
    "CURVE_FILE", "LEARNING_RATE", "METRICS_FILE", "REGISTERED_SUFFIX", "REGISTERED_SUFFIXES", "TASKS",
    "FinetuneInputs", "FinetuneResult", "FinetuneSettings", "finetune", "finetuned_release", "register_finetuned",
]  # fmt: skip
