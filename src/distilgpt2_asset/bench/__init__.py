"""The speed benchmarks, the soak test, and the stock deployment they compare against.

    python -m distilgpt2_asset.bench serving [--quick]  # side-by-side figures -> benchmarks/results.json, .png
    python -m distilgpt2_asset.bench soak               # bounded abuse of one server: 5xx, lost requests, RSS growth

(`python -m distilgpt2_asset.bench --help` lists every job.) stock_score.py is Azure's no-code
MLflow scoring reduced to its core; raw.py measures the engines alone, in one process, built as the
server builds them (the ceiling, and the speeds `deploy` sizes timeouts with).
"""
