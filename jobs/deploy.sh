#!/usr/bin/env bash
# Deploy the distilgpt2 asset to a managed online endpoint with the az ml CLI, try the model
# card's request, show the logs, and delete the endpoint (unless KEEP_ENDPOINT=1).
#
#   SUBSCRIPTION_ID=... RESOURCE_GROUP=... WORKSPACE=... jobs/deploy.sh
#
# Which model: REGISTRY=azureml (the default, as the model card shows) serves the version Microsoft
# publishes; REGISTRY=NAME serves your own, as `distilgpt2-asset publish --registry NAME` uploaded it.
# Optional: ENDPOINT_NAME (default: distilgpt2-<unix time>, unique per region; it must not exist:
# this script creates the endpoint and deletes it), DEPLOYMENT_NAME (blue), INSTANCE_TYPE (the YAML's:
# the first SKU of spec.yaml's inference allow-list), DEPLOYMENT_FILE (jobs/deploy/online-deployment.yml;
# the no-code MLflow one: jobs/deploy/online-deployment-mlflow.yml), KEEP_ENDPOINT=1.
#
# Before any az call, `distilgpt2-asset deploy --dry-run` checks this same deployment as the SDK path
# does: the instance type against spec.yaml's allow-list, inference-min-sku-spec and the SKU catalog
# (retired SKUs refused), the request timeout, the model version. Every az command names its
# subscription, resource group and workspace: your az defaults (az configure, az account) stay as they are.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"

subscription_id="${SUBSCRIPTION_ID:?set SUBSCRIPTION_ID}"
resource_group="${RESOURCE_GROUP:?set RESOURCE_GROUP}"
workspace="${WORKSPACE:?set WORKSPACE}"
registry="${REGISTRY:-azureml}"
endpoint_name="${ENDPOINT_NAME:-distilgpt2-$(date +%s)}"
deployment_name="${DEPLOYMENT_NAME:-blue}"
endpoint_file="${here}/deploy/online-endpoint.yml"
deployment_file="${DEPLOYMENT_FILE:-${here}/deploy/online-deployment.yml}"
request_file="${here}/deploy/sample-request.json"
in_workspace=(--subscription "${subscription_id}" --resource-group "${resource_group}" --workspace-name "${workspace}")

# name and version of the model: spec.yaml, the single source of truth
spec_file="${root}/spec.yaml"
model_name="$(sed -n 's/^name: *//p' "${spec_file}")"
model_version="$(sed -n 's/^version: *//p' "${spec_file}")"
model="azureml://registries/${registry}/models/${model_name}/versions/${model_version}"

overrides=(endpoint_name="${endpoint_name}" name="${deployment_name}" model="${model}")
if [[ -n "${INSTANCE_TYPE:-}" ]]; then
  overrides+=(instance_type="${INSTANCE_TYPE}")
fi

# 1. the checks of the SDK path, offline: a refusal stops here, before anything is created
if command -v distilgpt2-asset > /dev/null 2>&1; then
  checker=(distilgpt2-asset)
elif [[ -x "${root}/.venv/bin/distilgpt2-asset" ]]; then
  checker=("${root}/.venv/bin/distilgpt2-asset")
else
  echo "jobs/deploy.sh checks the deployment with distilgpt2-asset first: install it (bash scripts/install.sh)" >&2
  exit 2
fi
"${checker[@]}" deploy --dry-run --model-registry "${registry}" --endpoint-name "${endpoint_name}" \
  --deployment-name "${deployment_name}" --deployment-file "${deployment_file}" \
  ${INSTANCE_TYPE:+--set "instance_type=${INSTANCE_TYPE}"} > /dev/null

# 2. the model version must exist in the registry (a registry command: no workspace)
az ml model show --name "${model_name}" --version "${model_version}" --registry-name "${registry}" \
  --subscription "${subscription_id}" --output none

# 3. the endpoint must be new: the clean-up below deletes it
if az ml online-endpoint show --name "${endpoint_name}" "${in_workspace[@]}" --output none 2> /dev/null; then
  echo "endpoint ${endpoint_name} already exists; set ENDPOINT_NAME to a new name (this script deletes what it creates)" >&2
  exit 2
fi

# From the moment the endpoint may exist, it is deleted on exit (failure and Ctrl-C included), so
# that nothing keeps billing; the traps are set before it is created.
delete_endpoint() {
  if [[ "${KEEP_ENDPOINT:-0}" != "1" ]]; then
    az ml online-endpoint delete --name "${endpoint_name}" "${in_workspace[@]}" --yes --no-wait
  fi
}
trap delete_endpoint EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# 4. endpoint (key auth), then the deployment with all traffic
az ml online-endpoint create --file "${endpoint_file}" --name "${endpoint_name}" "${in_workspace[@]}"
if ! az ml online-deployment create --file "${deployment_file}" --all-traffic "${in_workspace[@]}" --set "${overrides[@]}"; then
  echo "deployment failed; the container logs:" >&2
  az ml online-deployment get-logs --name "${deployment_name}" --endpoint-name "${endpoint_name}" "${in_workspace[@]}" --lines 200 || true
  exit 1
fi
az ml online-endpoint show --name "${endpoint_name}" "${in_workspace[@]}" --query "{scoring_uri: scoring_uri, traffic: traffic}"

# 5. the model card's request
az ml online-endpoint invoke --name "${endpoint_name}" --deployment-name "${deployment_name}" "${in_workspace[@]}" \
  --request-file "${request_file}"

# 6. logs of the scoring container (init time, request lines)
az ml online-deployment get-logs --name "${deployment_name}" --endpoint-name "${endpoint_name}" "${in_workspace[@]}" --lines 100

# 7. clean up: delete_endpoint runs on exit (keep it with KEEP_ENDPOINT=1)
