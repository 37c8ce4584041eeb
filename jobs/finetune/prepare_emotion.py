"""The emotion dataset (dair-ai/emotion, "split" config) as JSONL for `distilgpt2-asset finetune`.

Azure's text-classification finetuning samples use this dataset; its labels are class indices,
written here as their names (sadness, joy, love, anger, fear, surprise) so that the finetuned
model answers with names. Needs network access to the Hugging Face hub:

    pip install datasets==5.2.0
    python jobs/finetune/prepare_emotion.py --output emotion/
    distilgpt2-asset finetune --train emotion/train.jsonl --validation emotion/validation.jsonl

Self-contained (standard library + datasets).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DATASET_ID = "dair-ai/emotion"
DATASET_CONFIG = "split"
SPLITS = {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}


def write_named_jsonl(split, names: list[str], output: Path) -> int:
    """{text, label index} rows as {text, label name} JSONL, staged then renamed (never half-written)."""
    named = split.rename_column("label", "label_id").map(
        lambda row: {"label": names[row["label_id"]]}, remove_columns=["label_id"]
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial-{os.getpid()}")
    named.to_json(staging, lines=True, force_ascii=False)
    os.replace(staging, output)
    return len(named)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="folder for train/validation/test.jsonl")
    parser.add_argument("--revision", default="main", help="dataset commit SHA or branch (a SHA pins the data)")
    args = parser.parse_args(argv)
    try:
        from datasets import load_dataset
    except ImportError:
        print("error: this script needs the datasets package: pip install datasets==5.2.0", file=sys.stderr)
        return 2
    dataset = load_dataset(DATASET_ID, DATASET_CONFIG, revision=args.revision)
    names = dataset["train"].features["label"].names
    for split, file_name in SPLITS.items():
        count = write_named_jsonl(dataset[split], names, args.output / file_name)
        print(f"{split}: {count} rows -> {args.output / file_name}")
    print(f"labels: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
