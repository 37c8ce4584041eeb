"""The stock deployment, for the benchmark: Azure's no-code MLflow scoring of this model, reduced to its core.

Loads the MLflow model with mlflow.pyfunc (the transformers text-generation pipeline) and answers
{"input_data": [...], "params": {...}} with model.predict(input_data, params=params), as the
curated mlflow-model-inference image does; served by azmlinfsrv with one sync worker.
"""

import json
import os

import mlflow.pyfunc
from mlflow.pyfunc import PyFuncModel

model: PyFuncModel  # loaded by init(), which azmlinfsrv calls before any run()


def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])


def run(raw_data):
    payload = json.loads(raw_data)
    return model.predict(payload["input_data"], params=payload.get("params"))
