"""The model card's evaluation data: cnn_dailymail 3.0.0, test split, first 1000 articles, as JSONL.

Each row: input_string = the first 100 characters of the article (the prompt), ground_truth = the
whole article (what the model should continue into). This is the first step of
jobs/evaluate-model-text-generation.yml; with network access it also runs on its own:

    pip install datasets==5.2.0
    python jobs/evaluation/prepare_cnn_dailymail.py --output cnn_dailymail-test.jsonl
    distilgpt2-asset evaluate --model MODEL_DIR --data cnn_dailymail-test.jsonl --output eval-out

Self-contained on purpose (standard library + datasets): Azure uploads this folder as the step's code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

# The card's "cnn_dailymail" lives under this id on the Hugging Face hub since its loading script
# was retired; the data files (parquet) are the same 3.0.0 release.
DATASET_ID = "abisee/cnn_dailymail"
DATASET_CONFIG = "3.0.0"
SPLIT = "test"


def evaluation_records(articles: Iterable[str], rows: int, prompt_chars: int) -> Iterator[dict[str, str]]:
    """The first `rows` articles as {input_string: first prompt_chars characters, ground_truth: article}."""
    for article in islice(articles, rows):
        yield {"input_string": article[:prompt_chars], "ground_truth": article}


def write_jsonl(records: Iterable[dict], output: Path) -> int:
    """Write one JSON object per line (staged, then renamed: never half-written); return the count."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial-{os.getpid()}")
    count = 0
    try:
        with open(staging, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        os.replace(staging, output)
    finally:
        staging.unlink(missing_ok=True)
    return count


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the JSONL file to write")
    parser.add_argument("--rows", type=int, default=1000, help="how many test articles (default: 1000)")
    parser.add_argument("--prompt-chars", type=int, default=100, help="prompt length in characters (default: 100)")
    parser.add_argument(
        "--revision", default="main", help="dataset revision on the hub; pass a commit SHA to pin the data exactly"
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.prompt_chars < 1:
        parser.error("--rows and --prompt-chars must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    from datasets import load_dataset
    from huggingface_hub import HfApi

    # Log the commit the revision resolved to, so a run can be repeated on exactly the same data.
    commit = HfApi().dataset_info(DATASET_ID, revision=args.revision).sha
    print(f"{DATASET_ID} {DATASET_CONFIG} {SPLIT} at revision {args.revision} = commit {commit}", flush=True)
    stream = load_dataset(DATASET_ID, DATASET_CONFIG, split=SPLIT, streaming=True, revision=commit)
    records = list(evaluation_records((row["article"] for row in stream), args.rows, args.prompt_chars))
    if len(records) < args.rows:
        print(f"error: the {SPLIT} split has only {len(records)} rows, {args.rows} were asked for", file=sys.stderr)
        return 1
    print(f"wrote {write_jsonl(records, args.output)} rows to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
