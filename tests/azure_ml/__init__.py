"""Tests of distilgpt2_asset.azure_ml (the folder is not named azure: on sys.path it would hide the Azure SDK)."""
