#!/usr/bin/env bash
# The main job: install, build the MLflow model, register it locally, serve it with the real
# azmlinfsrv on 127.0.0.1:5001 and print how to call it. Ctrl-C stops the server.
#   bash scripts/serve.sh                  # distilgpt2 from the Hugging Face hub at the pinned SHA
#   bash scripts/serve.sh --offline-demo   # no network: a tiny GPT-2 trained here, same tokenizer,
#                                          # served as it is (never registered as distilgpt2)
# Other arguments go to `distilgpt2-asset serve` (e.g. --port 5002, --engine transformers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ "${1:-}" = "--offline-demo" ]; then
  shift
  demo=.venv/offline-demo-model
  [ -d "$demo" ] || .venv/bin/distilgpt2-asset testing-model --shape tiny --output "$demo"
  export HF_HUB_OFFLINE=1
  exec .venv/bin/distilgpt2-asset serve --source "$demo" "$@"
fi
exec .venv/bin/distilgpt2-asset serve "$@"
