"""The peer's scoring script: what an Azure ML managed online endpoint runs, kept minimal.

``azmlinfsrv`` (``azureml-inference-server-http``) loads this file, calls ``init()`` once per worker
and ``run(raw_data)`` per request with the body as text. It serves the same ONNX file as ``fraudops
serve`` and answers the same JSON body (``{"transactions": [...]}``) with one probability and flag
per row; it checks nothing, so what it costs is the floor of the idiomatic Azure ML scoring path.

Runs in its own virtual environment (``make bench-score`` builds it): nothing from fraudops here.
"""

import json
import os

import numpy as np
import onnxruntime as ort

session = None
input_name = ""
features: list = []
threshold = 0.5


def init():
    global session, input_name, features, threshold
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    features = list(manifest["feature_names"])
    threshold = float(os.environ.get("PEER_THRESHOLD", "0.5"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("PEER_THREADS", "1"))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name


def run(raw_data):
    rows = json.loads(raw_data)["transactions"]
    x = np.array([[row[name] for name in features] for row in rows], dtype=np.float32)
    out = session.run(None, {input_name: x})
    probs = np.asarray(out[1] if len(out) > 1 else out[0], dtype=np.float64)
    probs = probs[:, -1] if probs.ndim == 2 else probs
    return {
        "results": [
            {"transaction_id": row.get("transaction_id"), "fraud_probability": p, "is_fraud": p >= threshold}
            for row, p in zip(rows, probs.tolist(), strict=True)
        ]
    }
