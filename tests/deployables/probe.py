"""Run inside a built package, as the platform runs it: ``python -I -S probe.py PACKAGE [score]``.

``-I -S``: no site-packages and no PYTHONPATH, so only the standard library, the package's source and its
``.python_packages/lib/site-packages`` (what the Python worker puts on the path in Azure) are importable. The probe
imports the app, lists its functions, and with ``score`` answers a scoring request and a stream batch through the
functions' own code, the way the host hands them over. It prints one JSON line: the functions, the answers, and
every top-level module the process loaded.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]


def _transaction(i: int, fraud: bool = False) -> dict:
    row = {"transaction_id": f"p{i}", "customer_id": f"c{i % 3}", "Time": float(i), **dict.fromkeys(FEATURES, 0.0)}
    if fraud:
        row.update(V14=-12.0, V17=-10.0, V12=-10.0, V10=-8.0, V3=-9.0, V7=-8.0, V11=6.0, V4=6.0, V16=-7.0)
    return row


def _score(functions: dict) -> dict:
    import azure.functions as func

    from functions.eventhub_events import to_function_events

    http = functions["http_app_func"].get_user_function()

    def call(method: str, url: str, body: bytes = b"") -> tuple[int, dict]:
        headers = {"content-type": "application/json"}
        request = func.HttpRequest(method, url, headers=headers, params={}, route_params={}, body=body)
        response = asyncio.run(http(request, None))
        return response.status_code, json.loads(response.get_body() or b"{}")

    status, answer = call(
        "POST",
        "http://localhost/api/score?explain=true",
        json.dumps({"transactions": [_transaction(1, fraud=True)]}).encode(),
    )
    health, _ = call("GET", "http://localhost/api/health")
    events = to_function_events(
        [json.dumps(_transaction(i, fraud=i == 0)).encode() for i in range(5)],
        partition="0",
        first_sequence=10,
        enqueued_time=datetime(2026, 12, 7, 8, tzinfo=UTC),
    )
    functions["score_stream"].get_user_function()(events)
    return {"status": status, "answer": answer, "health": health}


def main(package: str, score: bool) -> None:
    site = f"{package}/.python_packages/lib/site-packages"
    sys.path[:0] = [package, site]
    import function_app

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    out: dict = {"functions": sorted(functions), "loaded_at_import": sorted({m.split(".")[0] for m in sys.modules})}
    if score:
        out.update(_score(functions))
    out["loaded"] = sorted({m.split(".")[0] for m in sys.modules})
    out["paths"] = sorted(
        {
            str(getattr(m, "__file__", "") or "").split("/site-packages/")[0]
            for m in sys.modules.values()
            if "site-packages" in str(getattr(m, "__file__", "") or "")
        }
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], "score" in sys.argv[2:])
