#!/usr/bin/env bash
# CI exercise of `distilgpt2-asset publish`, for real and offline: the tiny testing model is built
# and scanned (the report printed, a finding fails CI), published to a throwaway local MLflow
# registry, published again (must be "unchanged"), refused with other content under the same
# version, and sent down the Azure path with --dry-run (the payload is checked against spec.yaml,
# and its scan evidence against the content). Expects the package's venv bin on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DISTILGPT2_ASSET_HOME="$work/home" HF_HUB_OFFLINE=1
unset MLFLOW_TRACKING_URI
model="$work/mlflow_model_folder"
testing=(--allow-unpinned)  # a testing model, not the pinned hub revision

fail() { echo "ci-publish: FAILED: $*" >&2; exit 1; }
expect() {  # expect OUTCOME COMMAND...: run it, echo its line, check the line starts with OUTCOME
  local outcome="$1" line
  shift
  line="$("$@")" || fail "$* exited $?"
  echo "$line"
  [[ "$line" == "$outcome:"* ]] || fail "expected '$outcome', got: $line"
}

distilgpt2-asset testing-model --shape tiny --output "$work/tiny"
distilgpt2-asset build --source "$work/tiny" --output "$model"
distilgpt2-asset scan --model "$model" || fail "the tiny model's build does not scan clean"

expect created distilgpt2-asset publish --model "$model" "${testing[@]}"
expect unchanged distilgpt2-asset publish --model "$model" "${testing[@]}"

# Other content under the same version must be refused with exit code 2 and a hint to bump.
cp -r "$model" "$work/other"
echo "other content" >> "$work/other/model_card.md"
python -c 'import sys; from distilgpt2_scoring.model_files import write_manifest; write_manifest(sys.argv[1])' "$work/other"
status=0
distilgpt2-asset publish --model "$work/other" "${testing[@]}" 2> "$work/refused.txt" || status=$?
cat "$work/refused.txt"
[[ $status -eq 2 ]] && grep -q "bump \`version\` in spec.yaml" "$work/refused.txt" \
  || fail "different content under a published version was not refused (exit $status)"

# The Azure path as far as it goes offline: the exact payload, no credentials, no network.
distilgpt2-asset publish --model "$model" "${testing[@]}" --registry ci-dry-run --dry-run > "$work/payload.json"
python - "$work/payload.json" "$model" <<'PY' || fail "the dry-run payload does not match spec.yaml"
import json, sys
from pathlib import Path

from distilgpt2_asset.registry import content_digest
from distilgpt2_asset.spec import load_spec

payload, model, spec = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]), load_spec()
expected = {
    "model_uri": f"azureml://registries/ci-dry-run/models/{spec.name}/versions/{spec.version}",
    "name": spec.name, "version": spec.version, "type": "mlflow_model", "path": str(model.resolve()),
    "description_source": "model/description.md", "tags": spec.string_tags(),
}
wrong = {key: payload.get(key) for key, value in expected.items() if payload.get(key) != value}
wrong.update({key: payload["properties"].get(key) for key, value in spec.string_properties().items()
              if payload["properties"].get(key) != value})
for key in ("content_sha256", "model_scan_sha256"):  # the scanned content is the published content
    if payload["properties"].get(key) != content_digest(model):
        wrong[key] = payload["properties"].get(key)
if payload["properties"].get("model_scan_verdict") != "clean":
    wrong["model_scan_verdict"] = payload["properties"].get("model_scan_verdict")
if wrong:
    sys.exit(f"dry-run payload fields differ from spec.yaml: {wrong}")
print(f"dry-run payload for {payload['model_uri']}: {len(payload['tags'])} tags, "
      f"{len(payload['properties'])} properties, as in spec.yaml, with a clean scan of the content")
PY
echo "ci-publish: OK"
