"""Entry script of jobs/finetune-text-classification.yml and finetune-text-generation.yml on Azure ML.

It runs `distilgpt2-asset finetune` with the job's options.

Azure starts it as torchrun would (distribution: pytorch): one process per GPU, each with torchrun's
variables, which accelerate's Accelerator reads. Every process runs the same finetune command;
rank 0 writes the MLflow model. The model is built in a local
folder and then copied into the job's output: the output is a mount point, and a model is
staged and renamed beside its final place, which a mount point's parent does not allow.
Checkpoints stay on the node's local disk. Run locally the same way:

    torchrun --nproc_per_node 2 jobs/finetune/train.py --model-output OUT --train data.jsonl [finetune options]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the uploaded repository: spec.yaml, src/, scoring/
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "scoring")]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from distilgpt2_asset.cli import main as cli_main  # noqa: E402


def publish(model: Path, destination: Path) -> None:
    """Copy the finished MLflow folder's files into the (existing, mounted) output folder."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model, destination, dirs_exist_ok=True)
    print(f"MLflow model written to {destination}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-output", type=Path, required=True, help="the job's mlflow_model output folder")
    known, finetune_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="finetune-") as work:
        model = Path(work) / "model"
        code = cli_main(["finetune", *finetune_args, "--output", str(model), "--no-register"])
        if code == 0 and model.is_dir():  # only rank 0 writes the model
            publish(model, known.model_output)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
