"""Evaluation: text-generation metrics (rouge, bleu, as Azure's evaluation component defines them)
and perplexity, computed through our own scoring code; the command is `distilgpt2-asset evaluate`.

run.py drives an evaluation; data.py reads the rows; metrics.py and perplexity.py compute;
report.py writes metrics.json, predictions.jsonl and the chart.
"""
