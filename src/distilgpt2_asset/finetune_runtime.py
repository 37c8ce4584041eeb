"""Where finetuning runs: device, torchrun's process group, and the accelerator flags' fate.

Azure ML's `distribution: pytorch` starts one process per GPU with torchrun's variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); without them this is one process.
apply_deepspeed and apply_ort are honoured only where they can be; every flag that cannot
apply is said plainly (printed, and kept in metrics.json), never dropped silently.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field

import torch


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    notes: dict[str, str] = field(default_factory=dict)  # flag -> what happened to it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def start_runtime() -> Runtime:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Runtime(device, rank, world_size, local_rank)


# What each accelerator flag needs: (package to import, name users know it by).
ACCELERATORS = {"apply_deepspeed": ("deepspeed", "DeepSpeed"), "apply_ort": ("onnxruntime.training", "ONNX Runtime training")}


def accelerator_notes(requested: dict[str, bool], device: torch.device) -> dict[str, str]:
    """flag -> a plain sentence on whether it applies here, for every flag that was requested.

    This trainer is plain PyTorch (DDP across GPUs); DeepSpeed ZeRO and ORTModule pay off for
    models far larger than distilgpt2's 82M parameters, so where they could run we still say so
    rather than pretend: the flag is reported as not applied, with the reason.
    """
    notes = {}
    for flag, (package, title) in ACCELERATORS.items():
        if not requested.get(flag):
            continue
        if device.type != "cuda":
            notes[flag] = f"{flag} requested but no CUDA device: training without {title}"
        elif not _installed(package):
            notes[flag] = f"{flag} requested but the {package.split('.')[0]} package is not installed: training without {title}"
        else:
            notes[flag] = f"{flag} requested but this trainer does not integrate {title} yet: training with plain PyTorch"
    return notes


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
