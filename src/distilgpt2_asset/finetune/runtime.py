"""Where finetuning runs: accelerate's Accelerator, and what became of the accelerator flags.

The Accelerator reads torchrun's variables (Azure ML `distribution: pytorch` starts one process
per GPU with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), joins the process group, picks the
device, wraps the model in DDP and shards the batches; without those variables it is one process.
apply_deepspeed and apply_ort are honoured only where they can be; every flag that cannot
apply is said plainly (printed, and kept in metrics.json), never dropped silently.
"""

from __future__ import annotations

import importlib.util

import torch


def start_accelerator(seed: int):
    """An Accelerator whose data loaders shuffle by (seed, epoch) alone, so a resumed run sees the same batches."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    return Accelerator(
        # Without a GPU, accelerate joins torchrun's processes only when told to run on the CPU
        # (`accelerate launch` says so through ACCELERATE_USE_CPU); otherwise each would train alone.
        cpu=not torch.cuda.is_available(),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed),
    )


def leave_process_group() -> None:
    """End torchrun's process group, if this process joined one: once, when the command is done.
    accelerate joins it once per process and every later run in the process reuses it."""
    from accelerate import PartialState

    PartialState().destroy_process_group()


# What each accelerator flag needs: (module to import, name users know it by). ORT training is its own
# module: onnxruntime alone (the inference wheel) does not provide it.
ACCELERATORS = {
    "apply_deepspeed": ("deepspeed", "DeepSpeed"),
    "apply_ort": ("onnxruntime.training", "ONNX Runtime training"),
}


def accelerator_notes(requested: dict[str, bool | None], device: torch.device) -> dict[str, str]:
    """flag -> a plain sentence on whether it applies here, for every flag that was requested.

    This trainer is PyTorch DDP through accelerate; DeepSpeed ZeRO and ORTModule pay off for
    models far larger than distilgpt2's 82M parameters (and ZeRO would shard the optimizer state
    the safetensors checkpoints keep whole), so where they could run we still say so rather than
    pretend: the flag is reported as not applied, with the reason.
    """
    notes = {}
    for flag, (package, title) in ACCELERATORS.items():
        if not requested.get(flag):
            continue
        if device.type != "cuda":
            notes[flag] = f"{flag} requested but no CUDA device: training without {title}"
        elif not _installed(package):
            notes[flag] = f"{flag} requested but {package} is not installed: training without {title}"
        else:
            notes[flag] = f"{flag} requested but this trainer does not integrate {title} yet: training with PyTorch DDP"
    return notes


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
