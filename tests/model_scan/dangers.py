"""The dangers the scan must name, each planted in a copy of a good model folder.

Each plant(folder, weights) writes one danger (weights: the folder holding config.json and the
safetensors file) and returns the file the scan must name and the rules that must name it.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path


class RunsACommand:
    """Pickled, it tells the unpickler to run a shell command. The tests pickle it and never load it:
    the command would create `marker`, which the tests check is never there."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickle_running_a_command(folder: Path, weights: Path):
    path = weights / "training_args.bin"
    path.write_bytes(pickle.dumps(RunsACommand(folder.parent / "pwned")))
    return path, {"pickle", "modelscan"}


def pickle_named_safetensors(folder: Path, weights: Path):
    path = weights / "model.safetensors"
    path.write_bytes(pickle.dumps({"transformer.wte.weight": [[0.0] * 4]}))
    return path, {"pickle", "safetensors"}


def safetensors_with_a_wrong_shape(folder: Path, weights: Path):
    from safetensors.numpy import load_file, save_file

    path = weights / "model.safetensors"
    tensors = load_file(path)
    tensors["transformer.h.0.mlp.c_fc.bias"] = tensors["transformer.h.0.mlp.c_fc.bias"][:-1]
    save_file(tensors, path, metadata={"format": "pt"})
    return path, {"safetensors"}


def auto_map_in_config(folder: Path, weights: Path):
    path = weights / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_gpt2_fast.FastGPT2LMHeadModel"}
    path.write_text(json.dumps(config, indent=2))
    return path, {"custom-code"}


def symlink_to_etc_passwd(folder: Path, weights: Path):
    path = weights / "vocab_extra.txt"
    path.symlink_to("/etc/passwd")
    return path, {"symlink"}


def extra_executable_script(folder: Path, weights: Path):
    path = folder / "postprocess.sh"
    path.write_text("#!/bin/sh\necho postprocessing\n")
    path.chmod(0o755)
    return path, {"executable", "layout"}


DANGERS = {
    plant.__name__: plant
    for plant in (
        pickle_running_a_command,
        pickle_named_safetensors,
        safetensors_with_a_wrong_shape,
        auto_map_in_config,
        symlink_to_etc_passwd,
        extra_executable_script,
    )
}
