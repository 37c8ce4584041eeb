"""Finetuning distilgpt2 for text classification (LoRA by default); the command is `distilgpt2-asset finetune`.

run.py drives a run (settings, data, training, export, registration); data.py reads and splits
the dataset; model.py makes the classifier and exports the MLflow model; loop.py trains and
evaluates; checkpoints.py writes safetensors checkpoints and resumes exactly; runtime.py sets up
accelerate (devices, processes) and says which of DeepSpeed and ORT cannot apply.
"""

from .run import (
    CURVE_FILE,
    LEARNING_RATE,
    METRICS_FILE,
    REGISTERED_SUFFIX,
    FinetuneInputs,
    FinetuneResult,
    FinetuneSettings,
    finetune,
    register_finetuned,
)

__all__ = [
    "CURVE_FILE", "LEARNING_RATE", "METRICS_FILE", "REGISTERED_SUFFIX", "FinetuneInputs", "FinetuneResult",
    "FinetuneSettings", "finetune", "register_finetuned",
]  # fmt: skip
