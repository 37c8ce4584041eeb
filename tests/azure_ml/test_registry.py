"""`publish --registry NAME`: the Azure ML registry path, with only MLClient's network calls faked.

The fake keeps what a registry would hold, and records exactly what each call sends.
"""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from azure.ai.ml.entities import Model
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from publish_helpers import changed_copy, edit_spec, make_asset_root, publish

from distilgpt2_asset.azure_ml import registry as azure_registry
from distilgpt2_asset.model_scan import SCAN_PROPERTIES
from distilgpt2_asset.publish import COMMIT_PROPERTY, CONTENT_PROPERTY, MANIFEST_PROPERTY
from distilgpt2_asset.registry import content_digest
from distilgpt2_scoring.model_files import verify_manifest

REGISTRY = "contoso-models"
TESTING = "--allow-unpinned"  # the tiny model is built from a local folder, not the pinned hub revision


class FakeModels:
    """ml_client.models: get and create_or_update, as a registry answers them."""

    def __init__(self):
        self.stored: dict[tuple[str, str], Model] = {}
        self.sent: list[dict] = []
        self.get_error: Exception | None = None
        self.create_error: Exception | None = None

    def get(self, name, version):
        if self.get_error:
            raise self.get_error
        if (name, version) not in self.stored:
            raise ResourceNotFoundError("Could not find asset")
        return copy.deepcopy(self.stored[(name, version)])

    def create_or_update(self, model):
        local = not str(model.path).startswith("azureml://")
        self.sent.append(
            {
                "name": model.name,
                "version": model.version,
                "type": model.type,
                "path": str(model.path),
                "tags": dict(model.tags),
                "properties": dict(model.properties),
                "description": model.description,
                "uploaded": verify_manifest(model.path) if local else None,  # the files exist while they upload
            }
        )
        if self.create_error:
            raise self.create_error
        kept = copy.deepcopy(model)
        kept.path = f"azureml://registries/{REGISTRY}/models/{model.name}/versions/{model.version}/mlflow_model_folder"
        self.stored[(model.name, model.version)] = kept
        return copy.deepcopy(kept)


class FakeMLClient:
    """Stands in for azure.ai.ml.MLClient; one registry's models shared by every client made."""

    def __init__(self):
        self.models = FakeModels()
        self.made_for: list[str] = []
        self.error: Exception | None = None

    def __call__(self, credential, registry_name):
        credential.get_token(azure_registry.ARM_SCOPE)
        if self.error:
            raise self.error
        self.made_for.append(registry_name)
        return self


class SignedIn:
    """A credential that has a token (what azure/login leaves behind in CI)."""

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken("token", 2**31)


@pytest.fixture
def asset_root(tmp_path, monkeypatch, isolated_home):
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)  # the copied checkout is not a git repo
    root = make_asset_root(tmp_path / "asset")
    monkeypatch.setenv("DISTILGPT2_ASSET_ROOT", str(root))
    return root


@pytest.fixture
def registry(monkeypatch):
    fake = FakeMLClient()
    monkeypatch.setattr("azure.ai.ml.MLClient", fake)
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", SignedIn)
    return fake


@pytest.fixture
def no_network(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("no credential and no MLClient may be made here")

    monkeypatch.setattr("azure.ai.ml.MLClient", forbidden)
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", forbidden)


def publish_to_azure(capsys, model, *args):
    return publish(capsys, "--model", str(model), TESTING, "--registry", REGISTRY, *args)


def test_dry_run_prints_the_exact_payload_field_by_field(asset_root, asset_spec, tiny_mlflow_model, no_network, capsys):
    code, out, _ = publish_to_azure(capsys, tiny_mlflow_model, "--dry-run")
    assert code == 0
    payload = json.loads(out)
    assert payload["registry"] == f"azureml://registries/{REGISTRY}"
    assert payload["model_uri"] == f"azureml://registries/{REGISTRY}/models/distilgpt2/versions/15"
    assert payload["name"] == asset_spec.name == "distilgpt2"
    assert payload["version"] == asset_spec.version == "15"
    assert payload["type"] == "mlflow_model"
    assert payload["path"] == str(tiny_mlflow_model) and payload["upload_as"] == "mlflow_model_folder"
    assert payload["description_source"] == "model/description.md"
    assert payload["description_sha256"] == hashlib.sha256(asset_spec.description.encode()).hexdigest()
    assert payload["tags"] == asset_spec.string_tags()
    for key, value in asset_spec.string_properties().items():
        assert payload["properties"][key] == value, key
    manifest = json.loads((tiny_mlflow_model / "sha256-manifest.json").read_text())["files"]
    assert payload["properties"][CONTENT_PROPERTY] == content_digest(tiny_mlflow_model)
    assert json.loads(payload["properties"][MANIFEST_PROPERTY]) == manifest
    assert payload["properties"][COMMIT_PROPERTY] == "a" * 40
    assert payload["properties"]["model_scan_verdict"] == "clean"
    assert payload["properties"]["model_scan_sha256"] == content_digest(tiny_mlflow_model)
    assert payload["properties"].keys() == asset_spec.string_properties().keys() | {
        CONTENT_PROPERTY,
        MANIFEST_PROPERTY,
        COMMIT_PROPERTY,
        *SCAN_PROPERTIES,
    }


def test_first_publish_uploads_the_model_and_creates_the_version(
    asset_root, asset_spec, tiny_mlflow_model, registry, capsys
):
    code, out, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert (code, err) == (0, "")
    assert out == f"created: azureml://registries/{REGISTRY}/models/distilgpt2/versions/15\n"
    assert registry.made_for == [REGISTRY]
    [sent] = registry.models.sent
    assert (sent["name"], sent["version"], sent["type"]) == ("distilgpt2", "15", "mlflow_model")
    assert sent["path"].endswith("/mlflow_model_folder")
    assert sent["uploaded"] == verify_manifest(tiny_mlflow_model)
    assert sent["tags"] == asset_spec.string_tags()
    assert sent["description"] == asset_spec.description
    assert sent["properties"][CONTENT_PROPERTY] == content_digest(tiny_mlflow_model)
    assert sent["properties"][COMMIT_PROPERTY] == "a" * 40


def test_the_same_content_again_sends_nothing(asset_root, tiny_mlflow_model, registry, monkeypatch, capsys):
    publish_to_azure(capsys, tiny_mlflow_model)
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)  # a later commit: provenance, not a change
    code, out, _ = publish_to_azure(capsys, tiny_mlflow_model)
    assert (code, out) == (0, f"unchanged: azureml://registries/{REGISTRY}/models/distilgpt2/versions/15\n")
    assert len(registry.models.sent) == 1
    assert registry.models.stored[("distilgpt2", "15")].properties[COMMIT_PROPERTY] == "a" * 40


def test_changed_tags_and_card_update_the_metadata_without_an_upload(asset_root, tiny_mlflow_model, registry, capsys):
    publish_to_azure(capsys, tiny_mlflow_model)
    edit_spec(asset_root, lambda spec: spec["system_metadata"].update(datasets=["openwebtext", "wikitext"]))
    card = asset_root / "model" / "description.md"
    card.write_text(card.read_text() + "\nPublished from CI.\n")
    code, out, _ = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 0
    assert out == (
        f"metadata-updated: azureml://registries/{REGISTRY}/models/distilgpt2/versions/15 (tag datasets, description)\n"
    )
    first, update = registry.models.sent
    assert update["path"] == f"azureml://registries/{REGISTRY}/models/distilgpt2/versions/15/mlflow_model_folder"
    assert update["uploaded"] is None
    assert update["tags"] == dict(first["tags"], datasets="openwebtext, wikitext")
    assert update["properties"] == first["properties"]
    assert update["description"].endswith("Published from CI.\n")


def test_different_content_under_a_published_version_is_refused(
    asset_root, tiny_mlflow_model, tmp_path, registry, capsys
):
    publish_to_azure(capsys, tiny_mlflow_model)
    other = changed_copy(tiny_mlflow_model, tmp_path / "other")
    code, out, err = publish_to_azure(capsys, other)
    assert code == 2 and out == ""
    assert err.startswith(
        f"error: azureml://registries/{REGISTRY}/models/distilgpt2/versions/15 already holds different content"
    )
    assert "bump `version` in spec.yaml" in err and err.count("\n") == 1
    assert len(registry.models.sent) == 1


def test_a_bumped_version_is_created_alongside(asset_root, tiny_mlflow_model, tmp_path, registry, capsys):
    publish_to_azure(capsys, tiny_mlflow_model)
    edit_spec(asset_root, lambda spec: spec.update(version=16))
    code, out, _ = publish_to_azure(capsys, changed_copy(tiny_mlflow_model, tmp_path / "other"), "--version", "v16")
    assert code == 0 and out.startswith("created: ") and out.rstrip().endswith("/versions/16")
    assert sorted(registry.models.stored) == [("distilgpt2", "15"), ("distilgpt2", "16")]


def test_a_changed_property_is_refused(asset_root, tiny_mlflow_model, registry, capsys):
    publish_to_azure(capsys, tiny_mlflow_model)
    edit_spec(
        asset_root,
        lambda spec: spec["system_metadata"]["tasks"].update(fineTuningTasks=["text-classification", "summarization"]),
    )
    code, _, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and "finetuning-tasks 'text-classification' -> 'text-classification, summarization'" in err
    assert len(registry.models.sent) == 1


def test_a_new_property_is_refused_like_changed_content(asset_root, tiny_mlflow_model, registry, capsys):
    # The az ml CLI reference: only the description and tags of a registered model can be updated.
    publish_to_azure(capsys, tiny_mlflow_model)
    # a property Microsoft's model schema allows as any string (it refuses properties it does not know)
    edit_spec(asset_root, lambda spec: spec["properties"].update(engineControllerManifestPath="engine.json"))
    code, out, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "new property engineControllerManifestPath 'engine.json'" in err and "bump `version` in spec.yaml" in err
    assert len(registry.models.sent) == 1


def test_a_version_published_by_other_tools_is_not_overwritten(asset_root, tiny_mlflow_model, registry, capsys):
    registry.models.stored[("distilgpt2", "15")] = Model(
        name="distilgpt2", version="15", type="mlflow_model", path="azureml://elsewhere", tags={}, properties={}
    )
    code, _, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and f"without a {CONTENT_PROPERTY} property" in err
    assert registry.models.sent == []


@pytest.mark.parametrize("name", ["", "r", "-models", "_models", "my models", "models.prod", "m" * 33, "modèles"])
def test_a_bad_registry_name_is_one_line_before_any_work(asset_root, tiny_mlflow_model, no_network, capsys, name):
    code, out, err = publish(capsys, "--model", str(tiny_mlflow_model), TESTING, f"--registry={name}")
    assert code == 2 and out == ""
    assert err.startswith(f"error: bad Azure ML registry name {name!r}") and err.count("\n") == 1


def test_missing_credentials_are_one_line(asset_root, tiny_mlflow_model, monkeypatch, capsys):
    # The real DefaultAzureCredential, limited to the environment credential with nothing set.
    for variable in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_USERNAME",
        "AZURE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    made = []
    monkeypatch.setattr("azure.ai.ml.MLClient", lambda *a, **k: made.append(a))
    code, out, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and out == "" and made == []
    assert err.startswith("error: not signed in to Azure:") and "azure/login" in err and err.count("\n") == 1


def test_a_registry_that_is_not_found_is_one_line(asset_root, tiny_mlflow_model, registry, capsys):
    registry.error = ResourceNotFoundError("registry discovery: 404")
    code, _, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2
    assert err == f"error: Azure ML registry '{REGISTRY}' not found, or not visible to this identity\n"


def test_a_forbidden_identity_is_one_line_naming_the_permission(asset_root, tiny_mlflow_model, registry, capsys):
    forbidden = HttpResponseError("AuthorizationFailed")
    forbidden.status_code = 403
    registry.models.get_error = forbidden
    code, _, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        f"error: Azure ML registry '{REGISTRY}' refused this identity (HTTP 403): signed in, but without permission"
    )
    assert "AzureML Registry User role" in err and "registries/assets/write" in err


def test_a_signed_in_identity_whose_token_is_refused_is_not_told_to_sign_in(
    asset_root, tiny_mlflow_model, registry, capsys
):
    # azure-core raises ClientAuthenticationError for a 401 answer too: a token was sent (another
    # tenant, an expired sign-in), so "no credentials, run az login" would be wrong.
    refused = ClientAuthenticationError("InvalidAuthenticationTokenTenant")
    refused.status_code = 401
    registry.models.get_error = refused
    code, _, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and err.count("\n") == 1 and "not signed in" not in err
    assert err.startswith(f"error: Azure ML registry '{REGISTRY}' did not accept this identity's token (HTTP 401)")
    assert "az account show" in err and "AzureML Registry User role" in err


def test_a_failed_upload_creates_nothing_and_leaves_no_staging(asset_root, tiny_mlflow_model, registry, capsys):
    registry.models.create_error = ServiceRequestError("connection reset")
    code, _, err = publish_to_azure(capsys, tiny_mlflow_model)
    assert code == 2 and err.startswith("error: cannot reach Azure") and err.count("\n") == 1
    assert registry.models.stored == {}
    staged = registry.models.sent[0]["path"]
    assert not __import__("pathlib").Path(staged).exists()
