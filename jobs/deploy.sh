#!/usr/bin/env bash
# Deploy the distilgpt2 asset to a managed online endpoint with the az ml CLI, try the model
# card's request, show the logs, and delete the endpoint (unless KEEP_ENDPOINT=1).
#
#   SUBSCRIPTION_ID=... RESOURCE_GROUP=... WORKSPACE=... jobs/deploy.sh
#
# Optional: ENDPOINT_NAME (default: distilgpt2-<unix time>, unique per region), DEPLOYMENT_NAME
# (blue), INSTANCE_TYPE (the YAML's: the first SKU of spec.yaml's inference allow-list),
# REGISTRY (azureml), DEPLOYMENT_FILE (jobs/deploy/online-deployment.yml; the no-code MLflow one:
# jobs/deploy/online-deployment-mlflow.yml), KEEP_ENDPOINT=1.
# `distilgpt2-asset deploy --dry-run --set instance_type=...` checks the same overrides offline
# (allow-list, min SKU spec, timeout vs max_new_tokens) before you spend quota.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

subscription_id="${SUBSCRIPTION_ID:?set SUBSCRIPTION_ID}"
resource_group="${RESOURCE_GROUP:?set RESOURCE_GROUP}"
workspace="${WORKSPACE:?set WORKSPACE}"
registry="${REGISTRY:-azureml}"
endpoint_name="${ENDPOINT_NAME:-distilgpt2-$(date +%s)}"
deployment_name="${DEPLOYMENT_NAME:-blue}"
endpoint_file="${here}/deploy/online-endpoint.yml"
deployment_file="${DEPLOYMENT_FILE:-${here}/deploy/online-deployment.yml}"
request_file="${here}/deploy/sample-request.json"

# name and version of the model: spec.yaml, the single source of truth
spec_file="${here}/../spec.yaml"
model_name="$(sed -n 's/^name: *//p' "${spec_file}")"
model_version="$(sed -n 's/^version: *//p' "${spec_file}")"
model="azureml://registries/${registry}/models/${model_name}/versions/${model_version}"

overrides=(endpoint_name="${endpoint_name}" name="${deployment_name}" model="${model}")
if [[ -n "${INSTANCE_TYPE:-}" ]]; then
  overrides+=(instance_type="${INSTANCE_TYPE}")
fi

az account set --subscription "${subscription_id}"
az configure --defaults group="${resource_group}" workspace="${workspace}"

# 1. the model version must exist in the registry
az ml model show --name "${model_name}" --version "${model_version}" --registry-name "${registry}" --output none

delete_endpoint() {
  if [[ "${KEEP_ENDPOINT:-0}" != "1" ]]; then
    az ml online-endpoint delete --name "${endpoint_name}" --yes --no-wait
  fi
}

# 2. endpoint (key auth), then the deployment with all traffic; from here on the endpoint is
#    deleted on exit, failure included, so that nothing keeps billing
az ml online-endpoint create --file "${endpoint_file}" --name "${endpoint_name}"
trap delete_endpoint EXIT
if ! az ml online-deployment create --file "${deployment_file}" --all-traffic --set "${overrides[@]}"; then
  echo "deployment failed; the container logs:" >&2
  az ml online-deployment get-logs --name "${deployment_name}" --endpoint-name "${endpoint_name}" --lines 200 || true
  exit 1
fi
az ml online-endpoint show --name "${endpoint_name}" --query "{scoring_uri: scoring_uri, traffic: traffic}"

# 3. the model card's request
az ml online-endpoint invoke --name "${endpoint_name}" --deployment-name "${deployment_name}" --request-file "${request_file}"

# 4. logs of the scoring container (init time, request lines)
az ml online-deployment get-logs --name "${deployment_name}" --endpoint-name "${endpoint_name}" --lines 100

# 5. clean up: delete_endpoint runs on exit (keep it with KEEP_ENDPOINT=1)
