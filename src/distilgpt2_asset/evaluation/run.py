"""Local text-generation evaluation, as Azure ML's model_evaluation_pipeline does it, through our own
scoring code (distilgpt2_scoring.service: the same validation, engines and batching as the HTTP server).

One model, or two side by side (e.g. finetuned vs base) on the same rows and settings:
  rows (JSONL) -> generation by the batch scorer (distilgpt2_scoring.batch, as `generate` and the batch
  endpoint do it: rows join the engine's running batch as others leave; progress bar)
  -> rouge / bleu against the ground truth (metrics.py) -> optional perplexity of a text file
  (perplexity.py, the model's own fp32 weights) -> metrics.json, predictions.jsonl, metrics.png.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from distilgpt2_scoring.folders import staged_folder

from ..errors import AssetError, invalid_as_asset_error
from .data import EvaluationRow, read_evaluation_rows
from .metrics import METRIC_DEFINITIONS, METRIC_NAMES, text_generation_metrics
from .perplexity import DEFAULT_STRIDE, PerplexityResult, load_causal_lm, text_perplexity
from .report import (
    CHART_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    check_output_folder,
    plot_metrics,
    write_json,
    write_jsonl,
)

TASK = "text-generation"
# Evaluation decodes greedily unless told otherwise: the same data gives the same scores on
# every run. Everything else (max_new_tokens, return_full_text, ...) is the model's signature default.
EVALUATION_PARAMS = {"do_sample": False}
DEFAULT_BATCH_SIZE = 16
ROLES = ("model", "compare_model")


@dataclass
class EvaluationOptions:
    input_column: str = "input_string"
    label_column: str = "ground_truth"
    params: dict[str, Any] = field(default_factory=dict)  # request params over EVALUATION_PARAMS
    batch_size: int = DEFAULT_BATCH_SIZE
    engine: str | None = None  # None: the serving default (TEXTGEN_ENGINE, else openvino on a CPU)
    limit: int | None = None
    perplexity_text: Path | None = None
    stride: int = DEFAULT_STRIDE


@dataclass
class ModelResult:
    role: str
    path: Path
    engine: str
    params: dict[str, Any]
    predictions: list[str]
    per_row: list[dict[str, float]]
    metrics: dict[str, float]
    generation_seconds: float
    perplexity: PerplexityResult | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "metrics": self.metrics,
            "perplexity": self.perplexity.as_dict() if self.perplexity else None,
            "generation": {
                "engine": self.engine,
                "params": self.params,
                "seconds": round(self.generation_seconds, 3),
                "rows_per_second": round(len(self.predictions) / max(self.generation_seconds, 1e-9), 3),
            },
        }


def verified_mlflow_folder(model_root: Path) -> Path:
    """The MLflow folder under model_root, its sha256 manifest checked, its task text-generation."""
    from distilgpt2_scoring.model_files import open_model
    from distilgpt2_scoring.tasks import model_task

    folder = open_model(Path(model_root), require_manifest=True).folder
    task = model_task(folder)
    if task != TASK:
        raise AssetError(f"{folder}: the model's task is {task!r}; evaluate scores {TASK} models")
    return folder


def _load_service(folder: Path, options: EvaluationOptions):
    from distilgpt2_scoring.model_files import open_model
    from distilgpt2_scoring.service import TextGenerationService
    from distilgpt2_scoring.settings import ServingSettings

    overrides: dict[str, Any] = {"max_batch_size": options.batch_size}
    if options.engine:
        overrides["engine"] = options.engine
    with invalid_as_asset_error("serving settings (--batch-size, --engine, TEXTGEN_* variables)"):
        settings = ServingSettings(**overrides)
    return TextGenerationService.load(open_model(folder), settings)


def _resolved_params(service, request_params: dict) -> dict[str, Any]:
    """The generation params the service applies to these requests (signature defaults + ours)."""
    from distilgpt2_scoring.params import parse_params

    return asdict(parse_params(request_params, service.served.defaults, service.settings.max_new_tokens))


def _generate(service, rows: Sequence[EvaluationRow], request_params: dict, data: Path, role: str) -> list[str]:
    """Predictions for every row, in row order, through the batch scorer (a window of rows in the
    engine's running batch at once); the first row the service refuses stops the evaluation, named."""
    from distilgpt2_scoring.batch import BatchScorer, Row, is_error

    scorer = BatchScorer(service, request_params)
    predictions: list[str] = []
    with tqdm(total=len(rows), desc=f"generating ({role})", unit="row") as progress:
        for output in scorer.score(Row(str(data), row.line, prompt=row.prompt) for row in rows):
            if is_error(output):
                raise AssetError(_refusal_message(output, data))
            predictions.append(output["generated_text"])
            progress.update()
    return predictions


def _refusal_message(output: dict, data: Path) -> str:
    if output["field"] == "prompt":
        return f"{data}:{output['line']}: the service refused this prompt: {output['error']}"
    if output["retryable"]:
        return f"{data}:{output['line']}: generation failed: {output['error']}"
    return f"the service refused the generation settings (--params): {output['error']}"


def evaluate_model(
    role: str, model_root: Path, rows: Sequence[EvaluationRow], data: Path, options: EvaluationOptions
) -> ModelResult:
    folder = verified_mlflow_folder(model_root)
    request_params = {**EVALUATION_PARAMS, **options.params}
    service = _load_service(folder, options)
    try:
        started = time.perf_counter()
        predictions = _generate(service, rows, request_params, data, role)
        seconds = time.perf_counter() - started
        engine, params = service.engine.name, _resolved_params(service, request_params)
    finally:
        service.close()
    metrics, per_row = text_generation_metrics(predictions, [row.ground_truth for row in rows])
    result = ModelResult(role, Path(model_root), engine, params, predictions, per_row, metrics, seconds)
    if options.perplexity_text:
        model, tokenizer = load_causal_lm(folder)
        result.perplexity = text_perplexity(model, tokenizer, options.perplexity_text, options.stride)
        result.metrics["perplexity"] = result.perplexity.perplexity
    return result


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _metrics_payload(
    data: Path, rows: Sequence[EvaluationRow], options: EvaluationOptions, results: list[ModelResult]
) -> dict:
    payload: dict[str, Any] = {
        "task": TASK,
        "data": {
            "path": str(data),
            "sha256": _sha256(data),
            "rows": len(rows),
            "input_column": options.input_column,
            "label_column": options.label_column,
        },
        "perplexity_text": (
            {"path": str(options.perplexity_text), "sha256": _sha256(options.perplexity_text)}
            if options.perplexity_text
            else None
        ),
        "definitions": {
            **METRIC_DEFINITIONS,
            "prediction": "the service's answer: prompt + continuation when params.return_full_text "
            "(the model's default, as in Azure's evaluation), the continuation alone otherwise",
        },
    }
    payload.update({result.role: result.summary() for result in results})
    if len(results) == 2:
        model, other = results
        payload["difference"] = {
            name: other.metrics[name] - model.metrics[name] for name in model.metrics if name in other.metrics
        }
    return payload


def _prediction_records(rows: Sequence[EvaluationRow], results: list[ModelResult]) -> list[dict]:
    records = []
    for index, row in enumerate(rows):
        record: dict[str, Any] = {"line": row.line, "input": row.prompt, "ground_truth": row.ground_truth}
        for result in results:
            prefix = "" if result.role == "model" else "compare_"
            record[f"{prefix}prediction"] = result.predictions[index]
            record.update({f"{prefix}{name}": score for name, score in result.per_row[index].items()})
        records.append(record)
    return records


def run_evaluation(
    model: Path, data: Path, output: Path, options: EvaluationOptions, compare_model: Path | None = None
) -> dict:
    """Evaluate model (and compare_model) on data; write the report to output; return metrics.json's content."""
    check_output_folder(Path(output))  # fail before minutes of generation, not after
    rows = read_evaluation_rows(data, options.input_column, options.label_column, options.limit)
    if options.perplexity_text and not Path(options.perplexity_text).is_file():
        raise AssetError(f"{options.perplexity_text}: no such text file for --perplexity-text")
    roots = [model] + ([compare_model] if compare_model else [])
    results = [
        evaluate_model(role, root, rows, data, options) for role, root in zip(ROLES, roots, strict=False)
    ]  # compare_model is optional
    payload = _metrics_payload(data, rows, options, results)
    with staged_folder(Path(output).resolve()) as staging:
        write_json(staging / METRICS_FILE, payload)
        write_jsonl(staging / PREDICTIONS_FILE, _prediction_records(rows, results))
        chart = {f"{r.role}: {r.path.name}": {"metrics": r.metrics} for r in results}
        plot_metrics(staging / CHART_FILE, chart, f"{TASK} on {Path(data).name} ({len(rows)} rows)")
    return payload


def format_table(payload: dict) -> str:
    """A plain-text table of the metrics for the terminal."""
    roles = [role for role in ROLES if payload.get(role)]
    names = [n for n in (*METRIC_NAMES, "perplexity") if n in payload["model"]["metrics"]]
    header = ["metric", *roles] + (["difference"] if "difference" in payload else [])
    lines = [header]
    for name in names:
        line = [name] + [f"{payload[role]['metrics'][name]:.4f}" for role in roles]
        if "difference" in payload:
            line.append(f"{payload['difference'][name]:+.4f}")
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines)


def parse_params_argument(text: str | None) -> dict[str, Any]:
    """--params as JSON: a request's params object (the batch scorer's reading of them)."""
    from distilgpt2_scoring.batch import parse_job_params

    try:
        return parse_job_params(text, "--params")
    except ValueError as exc:
        raise AssetError(str(exc)) from None
