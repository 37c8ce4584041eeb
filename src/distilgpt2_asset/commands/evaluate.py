"""`evaluate`: text-generation metrics (rouge, bleu, perplexity) of one model, or two side by side."""

from __future__ import annotations

from pathlib import Path

from ..evaluation.perplexity import DEFAULT_STRIDE
from ..evaluation.run import DEFAULT_BATCH_SIZE, EvaluationOptions, format_table, parse_params_argument, run_evaluation


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score generations against ground truth (rouge, bleu) and a text's perplexity",
        description=(
            "Generate a continuation for every row of a JSONL file through the serving code, score it "
            "against the row's ground truth with Azure ML's text-generation metrics (rouge1, rouge2, rougeL, "
            "rougeLsum, bleu_1..bleu_4) and optionally measure perplexity on a text file. Writes "
            "OUTPUT/metrics.json, OUTPUT/predictions.jsonl and OUTPUT/metrics.png."
        ),
    )
    p.add_argument(
        "--model", type=Path, required=True, help="model folder (an MLflow folder or a registered model's root)"
    )
    p.add_argument("--data", type=Path, required=True, help="JSONL file, one object per line")
    p.add_argument("--output", type=Path, required=True, help="report folder (replaced if it holds an earlier report)")
    p.add_argument("--input-column", default="input_string", help="prompt column (default: input_string)")
    p.add_argument("--label-column", default="ground_truth", help="ground-truth column (default: ground_truth)")
    p.add_argument("--perplexity-text", type=Path, help="UTF-8 text file whose perplexity to measure (sliding window)")
    p.add_argument(
        "--stride",
        type=positive_int,
        default=DEFAULT_STRIDE,
        help="perplexity window stride in tokens (default: %(default)s)",
    )
    p.add_argument("--compare-model", type=Path, help="a second model scored on the same rows, e.g. the base model")
    p.add_argument(
        "--params",
        help="generation params as in a scoring request, JSON (default: greedy decoding, the rest the model's "
        "defaults; predictions include the prompt, as in Azure's evaluation, unless return_full_text is false), "
        'e.g. \'{"max_new_tokens": 100, "return_full_text": false}\'',
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="sequences the engine runs at once (default: %(default)s)",
    )
    p.add_argument(
        "--engine",
        choices=("openvino", "ctranslate2", "transformers"),
        help="generation engine (default: the serving default, openvino on a CPU)",
    )
    p.add_argument("--limit", type=positive_int, help="score only the first N rows")
    p.set_defaults(handler=run)


def run(args) -> int:
    options = EvaluationOptions(
        input_column=args.input_column,
        label_column=args.label_column,
        params=parse_params_argument(args.params),
        batch_size=args.batch_size,
        engine=args.engine,
        limit=args.limit,
        perplexity_text=args.perplexity_text,
        stride=args.stride,
    )
    payload = run_evaluation(args.model, args.data, args.output, options, args.compare_model)
    print(format_table(payload))
    print(f"report: {args.output.resolve()} (metrics.json, predictions.jsonl, metrics.png)")
    return 0
