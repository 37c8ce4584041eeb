"""Finetuning checkpoints: safetensors for every tensor, JSON for progress; written whole or not at all.

A checkpoint folder holds the trainable weights (LoRA adapters, + the classifier head for text
classification, or every weight without LoRA), the best weights so far, the optimizer's moments, the RNG state of each
process (processes draw different dropout masks: their batches differ) and state.json
(progress, metric history, and the run's fingerprint). Resuming a run made with other data or
settings is refused, naming what differs: a resumed run must continue the same trajectory, or
it would silently train something else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from distilgpt2_scoring.folders import staged_folder

from ..errors import AssetError

LAST = "last"
STATE = "state.json"
TRAINABLE = "trainable.safetensors"
BEST = "best.safetensors"
OPTIMIZER = "optimizer.safetensors"
FORMAT = 3  # in state.json; 2: one RNG state per process (format 1 kept rank 0's alone); 3: best_score, any metric
_SEP = "::"


def trainable_names(model: torch.nn.Module) -> list[str]:
    """In the order the optimizer numbers them (safetensors files keep their own key order)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy on the CPU, which training goes on without changing (on the CPU, .cpu() alone would share the weights)."""
    return {
        name: p.detach().to("cpu", copy=True).contiguous() for name, p in model.named_parameters() if p.requires_grad
    }


def load_trainable(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    if set(weights) != set(trainable_names(model)):
        raise AssetError(
            "checkpoint weights do not match the model's trainable weights (another model or LoRA setting)"
        )
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


def _optimizer_tensors(
    optimizer: torch.optim.Optimizer, names: list[str], rng: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    state = optimizer.state_dict()["state"]
    tensors = {}
    for index, name in enumerate(names):
        for key, value in state.get(index, {}).items():
            tensors[f"{name}{_SEP}{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors.update({f"rng{_SEP}{generator}": states for generator, states in rng.items()})
    return tensors


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, names: list[str], tensors: dict[str, torch.Tensor], process_index: int
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for index, name in enumerate(names):
        entry = {key.split(_SEP, 1)[1]: t for key, t in tensors.items() if key.split(_SEP, 1)[0] == name}
        if entry:
            state[index] = entry
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    # clone(): torch 2.13 set_rng_state misreads a row that is a view into the table (and may crash)
    torch.set_rng_state(tensors[f"rng{_SEP}torch"][process_index].clone())
    if torch.cuda.is_available() and f"rng{_SEP}cuda" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng{_SEP}cuda"][process_index].clone())


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    best: dict[str, torch.Tensor],
    state: dict[str, Any],
    rng: dict[str, torch.Tensor],
) -> Path:
    """Write folder/last atomically (stage, then swap); return it. rng: generator -> one state per process."""
    target = Path(folder) / LAST
    with staged_folder(target) as staging:
        save_file(trainable_weights(model), staging / TRAINABLE)
        save_file(best, staging / BEST)
        save_file(_optimizer_tensors(optimizer, trainable_names(model), rng), staging / OPTIMIZER)
        (staging / STATE).write_text(json.dumps({**state, "format": FORMAT}, indent=2, sort_keys=True) + "\n")
    return target


def has_checkpoint(folder: Path) -> bool:
    return (Path(folder) / LAST / STATE).is_file()


def read_state(folder: Path) -> dict[str, Any]:
    path = Path(folder) / LAST / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AssetError(f"{path}: not a readable checkpoint ({exc})") from None
    found = state.get("format", 1) if isinstance(state, dict) else None
    if found != FORMAT:
        raise AssetError(
            f"{path}: a checkpoint of format {found}; this version resumes format {FORMAT} only, "
            "start afresh with another --checkpoint-dir"
        )
    return state


def check_fingerprint(folder: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    differences = [
        f"{key}: {saved.get(key)!r} then, {current.get(key)!r} now"
        for key in sorted(saved.keys() | current.keys())
        if saved.get(key) != current.get(key)
    ]
    if differences:
        raise AssetError(
            f"the checkpoint in {folder} was made by a different run ({'; '.join(differences)}); "
            "resume with the same data and settings, or start afresh with another --checkpoint-dir"
        )


def restore(
    folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, process_index: int
) -> dict[str, torch.Tensor]:
    """Load the trainable weights, optimizer moments and this process's RNG state; return the best weights."""
    last = Path(folder) / LAST
    load_trainable(model, load_file(last / TRAINABLE))
    _restore_optimizer(optimizer, trainable_names(model), load_file(last / OPTIMIZER), process_index)
    return load_file(last / BEST)


def read_best(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(Path(folder) / LAST / BEST)
