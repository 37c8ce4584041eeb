#!/usr/bin/env bash
# Deploy the distilgpt2 asset with the az ml CLI, try it, and delete what it created (unless KEEP_ENDPOINT=1).
#
#   SUBSCRIPTION_ID=... RESOURCE_GROUP=... WORKSPACE=... jobs/deploy.sh          # managed online endpoint
#   SUBSCRIPTION_ID=... RESOURCE_GROUP=... WORKSPACE=... jobs/deploy.sh batch    # batch endpoint
#
# online: endpoint + deployment (jobs/deploy/online-*.yml), the model card's request, the logs.
# batch: the compute cluster (jobs/deploy/batch-cluster.yml, created only when the workspace lacks it),
# batch endpoint + deployment (batch-endpoint.yml, batch-deployment.yml, made the default), a job over
# jobs/deploy/batch-sample/, its first output rows.
#
# Which model: REGISTRY=azureml (the default, as the model card shows) serves the version Microsoft
# publishes; REGISTRY=NAME serves your own, as `distilgpt2-asset publish --registry NAME` uploaded it.
# Optional: ENDPOINT_NAME (default: distilgpt2-<unix time>, distilgpt2-batch-<unix time> for batch; unique
# per region; it must not exist: this script creates the endpoint and deletes it), DEPLOYMENT_NAME (blue;
# batch: the YAML's), INSTANCE_TYPE (online: the YAML's, the first SKU of spec.yaml's inference allow-list),
# DEPLOYMENT_FILE (jobs/deploy/online-deployment.yml; the no-code MLflow one:
# jobs/deploy/online-deployment-mlflow.yml), KEEP_ENDPOINT=1.
#
# Before any az call, `distilgpt2-asset deploy [--batch] --dry-run` checks this same deployment as the SDK
# path does: the instance type (the cluster's size) against spec.yaml's allow-list, inference-min-sku-spec
# and the SKU catalog (retired SKUs refused), the timeouts, the model version. Every az command names its
# subscription, resource group and workspace: your az defaults (az configure, az account) stay as they are.
set -euo pipefail

mode="${1:-online}"
if [[ "${mode}" != online && "${mode}" != batch ]]; then
  echo "usage: jobs/deploy.sh [online|batch]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"

subscription_id="${SUBSCRIPTION_ID:?set SUBSCRIPTION_ID}"
resource_group="${RESOURCE_GROUP:?set RESOURCE_GROUP}"
workspace="${WORKSPACE:?set WORKSPACE}"
registry="${REGISTRY:-azureml}"
in_workspace=(--subscription "${subscription_id}" --resource-group "${resource_group}" --workspace-name "${workspace}")

# name and version of the model: spec.yaml, the single source of truth
spec_file="${root}/spec.yaml"
model_name="$(sed -n 's/^name: *//p' "${spec_file}")"
model_version="$(sed -n 's/^version: *//p' "${spec_file}")"
model="azureml://registries/${registry}/models/${model_name}/versions/${model_version}"

# the checks of the SDK path run offline, before anything is created
if command -v distilgpt2-asset > /dev/null 2>&1; then
  checker=(distilgpt2-asset)
elif [[ -x "${root}/.venv/bin/distilgpt2-asset" ]]; then
  checker=("${root}/.venv/bin/distilgpt2-asset")
else
  echo "jobs/deploy.sh checks the deployment with distilgpt2-asset first: install it (bash scripts/install.sh)" >&2
  exit 2
fi

# From the moment something may exist, it is deleted on exit (failure and Ctrl-C included), so that
# nothing keeps billing; the traps are set before it is created. delete_on_exit: what to delete.
delete_on_exit=()
clean_up() {
  if [[ "${KEEP_ENDPOINT:-0}" != "1" ]]; then
    local resource
    for resource in "${delete_on_exit[@]}"; do
      # shellcheck disable=SC2086  # "KIND NAME": two words on purpose
      az ml ${resource% *} delete --name "${resource#* }" "${in_workspace[@]}" --yes --no-wait
    done
  fi
}
set_traps() {
  trap clean_up EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

deploy_online() {
  local endpoint_name="${ENDPOINT_NAME:-distilgpt2-$(date +%s)}"
  local deployment_name="${DEPLOYMENT_NAME:-blue}"
  local endpoint_file="${here}/deploy/online-endpoint.yml"
  local deployment_file="${DEPLOYMENT_FILE:-${here}/deploy/online-deployment.yml}"
  local request_file="${here}/deploy/sample-request.json"
  local overrides=(endpoint_name="${endpoint_name}" name="${deployment_name}" model="${model}")
  if [[ -n "${INSTANCE_TYPE:-}" ]]; then
    overrides+=(instance_type="${INSTANCE_TYPE}")
  fi

  # 1. the checks of the SDK path, offline: a refusal stops here, before anything is created
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
  delete_on_exit=("online-endpoint ${endpoint_name}")
  set_traps

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

  # 7. clean up: clean_up runs on exit (keep it with KEEP_ENDPOINT=1)
}

deploy_batch() {
  local endpoint_name="${ENDPOINT_NAME:-distilgpt2-batch-$(date +%s)}"
  local cluster_file="${here}/deploy/batch-cluster.yml"
  local deployment_file="${here}/deploy/batch-deployment.yml"
  local cluster deployment_name
  cluster="$(sed -n 's/^name: *//p' "${cluster_file}")"
  deployment_name="${DEPLOYMENT_NAME:-$(sed -n 's/^name: *//p' "${deployment_file}")}"

  # 1. the checks of the SDK path, offline: a refusal stops here, before anything is created
  "${checker[@]}" deploy --batch --dry-run --model-registry "${registry}" --endpoint-name "${endpoint_name}" \
    --deployment-name "${deployment_name}" > /dev/null

  # 2. the model version must exist in the registry (a registry command: no workspace)
  az ml model show --name "${model_name}" --version "${model_version}" --registry-name "${registry}" \
    --subscription "${subscription_id}" --output none

  # 3. the endpoint must be new; the cluster is created only when missing (and then deleted with it)
  if az ml batch-endpoint show --name "${endpoint_name}" "${in_workspace[@]}" --output none 2> /dev/null; then
    echo "batch endpoint ${endpoint_name} already exists; set ENDPOINT_NAME to a new name (this script deletes what it creates)" >&2
    exit 2
  fi
  local new_cluster=1
  if az ml compute show --name "${cluster}" "${in_workspace[@]}" --output none 2> /dev/null; then
    new_cluster=0
  fi
  delete_on_exit=("batch-endpoint ${endpoint_name}")
  if [[ "${new_cluster}" == 1 ]]; then
    delete_on_exit+=("compute ${cluster}")
  fi
  set_traps

  # 4. cluster (scales to zero when idle), endpoint, then the deployment as the endpoint's default
  if [[ "${new_cluster}" == 1 ]]; then
    az ml compute create --file "${cluster_file}" --name "${cluster}" "${in_workspace[@]}"
  fi
  az ml batch-endpoint create --file "${here}/deploy/batch-endpoint.yml" --name "${endpoint_name}" "${in_workspace[@]}"
  az ml batch-deployment create --file "${deployment_file}" --set-default "${in_workspace[@]}" \
    --set endpoint_name="${endpoint_name}" name="${deployment_name}" model="${model}"

  # 5. a job over the sample prompts, followed to its end, and its first output rows
  local job
  job="$(az ml batch-endpoint invoke --name "${endpoint_name}" "${in_workspace[@]}" \
    --input "${here}/deploy/batch-sample" --input-type uri_folder --query name --output tsv)"
  az ml job stream --name "${job}" "${in_workspace[@]}"
  local outputs
  outputs="$(mktemp -d)"
  az ml job download --name "${job}" --output-name score --download-path "${outputs}" "${in_workspace[@]}"
  if [[ -f "${outputs}/named-outputs/score/predictions.jsonl" ]]; then
    head -n 5 "${outputs}/named-outputs/score/predictions.jsonl"
  fi

  # 6. clean up: clean_up runs on exit (keep it with KEEP_ENDPOINT=1)
}

"deploy_${mode}"
