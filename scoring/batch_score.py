"""Azure ML batch deployment entry script: init() loads the model's service, run(mini_batch) scores files.

The service, engine and request shape are the online deployment's (score.py): load_service() on
AZUREML_MODEL_DIR, TextGenerationService.predict() with {"input_data": [prompt], "params": {...}}.
Each mini-batch is a list of input file paths (JSON Lines or CSV; see distilgpt2_scoring.batch);
run() returns one JSON line per input row, in input order, each naming its file and line (and the
row's id), so that the deployment's append_row output can be read back and sorted whatever order
Azure appends mini-batches in. A bad row is an error row, never a failed mini-batch.

Job settings, from the deployment's environment_variables (the TEXTGEN_* serving settings too):
  BATCH_PARAMS       request params for every row, JSON (a row's own params override them)
  BATCH_TEXT_COLUMN  the prompt column of CSV files (default: text)
"""

from __future__ import annotations

import logging
import os
import sys
from itertools import chain
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the distilgpt2_scoring package ships beside this file

from distilgpt2_scoring.batch import DEFAULT_TEXT_COLUMN, BatchScorer, output_line, parse_job_params, read_rows  # noqa: E402
from distilgpt2_scoring.settings import ServingSettings  # noqa: E402
from distilgpt2_scoring.tasks import load_service  # noqa: E402

logger = logging.getLogger(__name__)
scorer: BatchScorer | None = None


def init() -> None:
    """Open and check the model, load its service; a bad job setting stops here, before any file."""
    global scorer
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; the batch deployment sets it to the model's folder")
    params = parse_job_params(os.environ.get("BATCH_PARAMS"), "BATCH_PARAMS")
    scorer = BatchScorer(load_service(Path(model_dir), ServingSettings()), params)
    logger.info("batch scoring ready: %d rows at once", scorer.window)


def run(mini_batch: list[str]) -> list[str]:
    """One JSON line per row of every file in the mini-batch, in order."""
    assert scorer is not None, "the batch deployment calls init() before run()"
    text_column = os.environ.get("BATCH_TEXT_COLUMN") or DEFAULT_TEXT_COLUMN
    rows = chain.from_iterable(read_rows(Path(path), Path(path).name, text_column) for path in mini_batch)
    return [output_line(output) for output in scorer.score(rows)]
