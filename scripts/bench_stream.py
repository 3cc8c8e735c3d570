"""Streaming benchmark (``make bench-stream``): batches of 1,000 events through the stream processor, in-process.

Decode and validate each event, score the batch in one call with a 300-tree model, write the
scored Parquet archive (create-only, to a private Azurite) and any alerts; events/s and the time
by stage, beside the floor measured in the same run: bare ONNX Runtime on the same 1,000 rows.
Prints a table and writes ``bench-results/stream.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def main() -> int:
    import numpy as np

    from cli.devtools.azurite import private_azurite, storage_env
    from cli.devtools.bench import report
    from cli.devtools.models import publish_synthetic_model
    from shared.adapters.model_store import ModelStore
    from shared.bootstrap import bootstrap
    from shared.domain.contracts import get_contract
    from shared.scoring.scorer import Scorer
    from shared.streaming.events import StreamEvent
    from shared.streaming.processor import StreamProcessor
    from training.generate import sample_features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--workdir", default=str(ROOT / "bench-results"))
    args = p.parse_args()
    n = args.batch_size
    x, _ = sample_features(n * (args.batches + 2), 5)
    bodies = [
        json.dumps(
            {
                "transaction_id": f"t{i}",
                "customer_id": f"c{i % 97}",
                **dict(zip(FEATURES, map(float, row), strict=True)),
            }
        ).encode()
        for i, row in enumerate(x)
    ]
    now = datetime.now(UTC)
    with private_azurite() as connection, tempfile.TemporaryDirectory() as spool:
        os.environ.update(storage_env(connection))
        store = bootstrap().blob_store  # the settings of the environment just set
        publish_synthetic_model(store, "fraud", version="bench", trees=300, rows=50_000, threshold=0.5)
        scorer = Scorer(ModelStore(store, "fraud"), feature_names=FEATURES, refresh_seconds=30, threads=1)
        processor = StreamProcessor(store, scorer, get_contract("creditcard"), spool_dir=Path(spool))
        summaries, walls = [], []
        for b in range(args.batches + 2):
            events = [StreamEvent(body, "0", b * n + i, now) for i, body in enumerate(bodies[b * n : (b + 1) * n])]
            started = time.perf_counter()
            summary = processor.process(events)
            if b >= 2:  # the first two warm up the model, the explainer and the connection pool
                walls.append(time.perf_counter() - started)
                summaries.append(summary)
        model = scorer.current()
        x1000 = np.ascontiguousarray(x[:n])
        bare = []
        for _ in range(30):
            started = time.perf_counter()
            model.session.run(None, {model.input_name: x1000})
            bare.append(time.perf_counter() - started)
    per_batch = statistics.median(walls)
    stages = {
        k: round(statistics.median(s.stages_ms.get(k, 0.0) for s in summaries), 2)
        for k in ("decode_validate", "score", "encode", "write")
    }
    result = {
        "batch_size": n,
        "batches": len(walls),
        "events_per_s": round(n / per_batch),
        "events_per_s_stages": round(
            n * 1000 / (stages["decode_validate"] + stages["score"] + stages["encode"] + stages["write"])
        ),
        "batch_ms": round(per_batch * 1000, 2),
        **{f"{k}_ms": v for k, v in stages.items()},
        "alerts_per_batch": statistics.median(s.alerts for s in summaries),
        "floor_bare_onnx_ms": round(statistics.median(bare) * 1000, 2),
        "ratio_to_bare_onnx": round(per_batch / statistics.median(bare), 2),
        "target_events_per_s": 20_000,
    }
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    return report(result, work / "stream.json")


if __name__ == "__main__":
    sys.exit(main())
