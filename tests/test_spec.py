"""spec.yaml carries every tag and property of the model card, in Microsoft's migrated schema
(system_metadata), read through AssetSpec."""

import ast
import json
from pathlib import Path

import pytest
import yaml
from azureml.registry.data.spec_metadata_mappings import (
    PROPERTY_TO_SYSTEM_METADATA,
    TAG_TO_SYSTEM_METADATA,
    TAGS_WITHOUT_SYSTEM_METADATA,
)
from azureml.registry.mgmt.transform_asset import transform_spec

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.skus import per_field_minimum
from distilgpt2_asset.spec import CARD_PROPERTIES, CARD_TAGS, SCENARIOS, AssetSpec, SkuSpec, load_spec

CARD = json.loads((Path(__file__).parent / "data" / "distilgpt2-model-card-v15.json").read_text())


def _card_dict(text: str) -> dict:
    """The card shows model_specific_defaults as Python's repr of an ordered dict."""
    return ast.literal_eval(text.removeprefix("ordereddict(").removesuffix(")"))


def _legacy(tags: dict, properties: dict) -> dict:
    """A spec in the card's layout (before the migration), as Microsoft's transform takes it."""
    return {"name": CARD["name"], "version": CARD["version"], "tags": dict(tags), "properties": dict(properties)}


def test_spec_yaml_is_in_the_migrated_schema(asset_spec):
    """tags keep only model_specific_defaults (a mapping), properties only SHA; the rest is system_metadata."""
    assert list(asset_spec.data["tags"]) == ["model_specific_defaults"]
    assert isinstance(asset_spec.data["tags"]["model_specific_defaults"], dict)
    assert list(asset_spec.data["properties"]) == ["SHA"]
    assert asset_spec.data["system_metadata"]["supportedComputes"]["inferenceComputes"][0] == "Standard_DS3_v2"


def test_microsofts_transform_of_the_card_is_our_system_metadata(asset_spec):
    migrated, _ = transform_spec(_legacy(CARD["tags"], CARD["properties"]))
    assert migrated["system_metadata"] == asset_spec.system_metadata


def test_our_card_view_migrates_back_to_spec_yaml(asset_spec):
    migrated, _ = transform_spec(_legacy(asset_spec.tags, asset_spec.properties))
    assert migrated["system_metadata"] == asset_spec.system_metadata
    assert migrated["properties"] == asset_spec.data["properties"]


def test_each_card_field_lives_where_microsofts_mapping_puts_it():
    for table, mapping in ((CARD_TAGS, TAG_TO_SYSTEM_METADATA), (CARD_PROPERTIES, PROPERTY_TO_SYSTEM_METADATA)):
        for card_name, dotted, _form in table:
            section, _, field = dotted.partition(".")
            if section == "system_metadata":
                assert mapping[card_name] == field, card_name
            else:
                assert card_name not in mapping, card_name  # kept where it is: SHA, model_specific_defaults
    assert "model_specific_defaults" in TAGS_WITHOUT_SYSTEM_METADATA


def test_a_field_missing_from_system_metadata_is_missing_from_the_card_view(asset_spec, tmp_path):
    data = yaml.safe_load(asset_spec.path.read_text())
    del data["system_metadata"]["license"]
    data["system_metadata"]["hiddenLayerScanned"] = False
    spec = AssetSpec(data, tmp_path / "spec.yaml")
    assert "license" not in spec.tags and "hiddenlayerscanned" not in spec.tags
    assert spec.tags["task"] == "text-generation"


def test_model_specific_defaults_must_be_a_mapping(asset_spec, tmp_path):
    data = yaml.safe_load(asset_spec.path.read_text())
    data["tags"]["model_specific_defaults"] = "{'apply_lora': 'true'}"  # the layout before the migration
    with pytest.raises(AssetError, match="must be a mapping"):
        _ = AssetSpec(data, tmp_path / "spec.yaml").model_specific_defaults


def test_name_and_version_are_the_cards(asset_spec):
    assert (asset_spec.name, asset_spec.version) == (CARD["name"], CARD["version"])


def test_tags_are_the_cards_in_the_cards_order(asset_spec):
    assert list(asset_spec.tags) == list(CARD["tags"])
    for name, shown in CARD["tags"].items():
        ours = asset_spec.tags[name]
        if name == "model_specific_defaults":
            assert list(ast.literal_eval(ours).items()) == list(_card_dict(shown).items())
        else:
            assert ours == shown, name  # lists compare in order


def test_properties_are_the_cards_in_the_cards_order(asset_spec):
    assert list(asset_spec.properties) == list(CARD["properties"])
    assert asset_spec.string_properties() == CARD["properties"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_min_sku_spec_is_the_per_field_minimum_of_the_cards_allow_list(scenario):
    allow = CARD["tags"][f"{scenario}_compute_allow_list"]
    assert str(per_field_minimum(allow)) == CARD["properties"][f"{scenario}-min-sku-spec"]
    assert CARD["properties"][f"{scenario}-recommended-sku"].split(", ") == allow


def test_identity_matches_the_model_card(asset_spec):
    assert (asset_spec.name, asset_spec.version) == ("distilgpt2", "15")
    assert asset_spec.data["$schema"].endswith("/model.schema.json")
    assert asset_spec.task == "text-generation"
    assert asset_spec.tags["license"] == "apache-2.0"
    assert asset_spec.tags["datasets"] == "openwebtext"
    assert asset_spec.hf_model_id == "distilgpt2"
    assert asset_spec.revision == "38cc92ec43315abd5136313225e95acc5986876c"
    assert asset_spec.properties["languages"] == "en"
    assert asset_spec.finetuning_tasks == ["text-classification"]


def test_shared_compute_and_hidden_layers_scanned_are_set(asset_spec):
    assert asset_spec.tags["SharedComputeCapacityEnabled"] == ""
    assert asset_spec.properties["SharedComputeCapacityEnabled"] == "True"
    assert asset_spec.tags["hiddenlayerscanned"] == ""


def test_model_specific_defaults_parse_to_booleans(asset_spec):
    assert asset_spec.model_specific_defaults == {"apply_deepspeed": True, "apply_lora": True, "apply_ort": True}


@pytest.mark.parametrize(
    "scenario, minimum, first, count",
    [
        ("inference", "2|0|8|28", "Standard_DS3_v2", 49),
        ("evaluation", "4|0|28|56", "Standard_DS4_v2", 44),
        ("finetune", "4|1|28|64", "Standard_NV12s_v3", 17),
    ],
)
def test_allow_lists_keep_the_cards_order_and_minimums(asset_spec, scenario, minimum, first, count):
    allow = asset_spec.allow_list(scenario)
    assert allow[0] == first and len(allow) == count
    assert str(asset_spec.min_sku_spec(scenario)) == minimum
    assert asset_spec.recommended_skus(scenario) == allow


def test_sample_request_is_read_from_the_model_card(asset_spec):
    assert asset_spec.sample_request == {
        "input_data": ["I believe the meaning of life is"],
        "params": {
            "top_p": 0.9,
            "temperature": 0.2,
            "max_new_tokens": 100,
            "do_sample": True,
            "return_full_text": True,
        },
    }


def test_model_card_states_uses_bias_and_perplexities(asset_spec):
    card = asset_spec.description
    for phrase in ("Intended uses", "Limitations and biases", "16.3", "21.1", "WikiText-103", "Sample output"):
        assert phrase in card


def test_string_tags_turn_lists_into_json_arrays(asset_spec):
    tags = asset_spec.string_tags()
    assert tags["inference_compute_allow_list"].startswith('["Standard_DS3_v2", ')
    assert asset_spec.string_properties()["SharedComputeCapacityEnabled"] == "True"


def test_sku_spec_parses_and_prints_the_pipe_format():
    assert SkuSpec.parse("4|1|28|64") == SkuSpec(4, 1, 28, 64)
    assert str(SkuSpec(2, 0, 8, 28)) == "2|0|8|28"
    with pytest.raises(ValueError, match="vCPUs"):
        SkuSpec.parse("4|1|28")


def test_a_missing_or_broken_spec_is_one_clear_error(tmp_path):
    with pytest.raises(AssetError, match="no such file"):
        load_spec(tmp_path / "spec.yaml")
    (tmp_path / "spec.yaml").write_text("name: [unclosed")
    with pytest.raises(AssetError, match="not valid YAML"):
        load_spec(tmp_path / "spec.yaml")


def test_registries_get_the_cards_tags_and_properties_as_strings(asset_spec):
    tags = asset_spec.string_tags()
    assert list(tags) == list(CARD["tags"])
    for name, shown in CARD["tags"].items():
        if isinstance(shown, list):
            assert json.loads(tags[name]) == shown, name
        elif name != "model_specific_defaults":  # compared as a dict above
            assert tags[name] == shown, name
    assert asset_spec.string_properties() == CARD["properties"]


def test_azure_ai_ml_loads_the_migrated_spec(asset_spec):
    from azure.ai.ml import load_model

    model = load_model(asset_spec.path)
    assert (model.name, str(model.version)) == (asset_spec.name, asset_spec.version)
    assert model.tags == asset_spec.data["tags"] and model.properties == asset_spec.data["properties"]
    assert model._system_metadata == asset_spec.system_metadata  # what Model(system_metadata=...) sends
