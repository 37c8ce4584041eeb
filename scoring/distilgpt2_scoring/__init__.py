"""Serving code for the distilgpt2 asset: the package behind scoring/score.py.

Runs on its own with the inference environment's packages (Azure uploads scoring/ as the
deployment's code); the distilgpt2_asset CLI imports it too, so there is one copy.
"""
