"""Behaviour over time end to end, with no skew: a contract with behavioural features, trained on curated history
(point in time), the online store (a real Redis) filled from that history, then new transactions scored over
HTTP (a real socket) and through the stream: in shuffled order within the lateness bound, some requests sent
twice, a stream batch delivered twice and cut differently. Every recorded feature vector must be the offline
builder's row for the same transaction, over the transactions that had arrived when it was scored."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from cli.devtools.redis import RedisServer
from cli.server import running_server
from shared.domain.entity_state import Event, decode
from shared.domain.history import history_of
from shared.domain.windows import point_in_time
from shared.streaming.events import StreamEvent
from tests.conftest import ROOT, clear_caches
from tests.test_cli import _fraudops

HISTORY, LIVE = 9_000, 1_200


@pytest.fixture
def redis_server(redis_module: RedisServer) -> RedisServer:
    """The module's server, emptied: each test's entities start without another test's history."""
    from shared.adapters.online_store import connect

    client = connect(redis_module.url(), password=redis_module.password, timeout=2.0)
    client.flushdb()
    client.close()
    return redis_module


# Every kind of behavioural feature, with windows that a test's few days fill (the quality benchmark's
# section, BEHAVIOUR_SECTION, adds 30-day windows: the same code, twice the test's time)
SECTION = """
behaviour:
  windows:
    - {entity: card, of: amount, over: [1h, 1d, 7d], stats: [count, mean, max, std]}
    - {entity: terminal, over: [1d, 7d]}
  distinct:
    - {entity: card, of: terminal_id, over: [1d]}
  since_previous: [card]
  amount_vs_mean:
    - {entity: card, over: 7d}
  fraud_share:
    - {entity: terminal, over: [1d, 7d]}
  calendar: [hour, night]
  label_delay: 1d
  lateness: 10m
"""


def _contract(folder) -> None:
    from training.generators.card_transactions import with_behaviour

    (folder / "card_behaviour.yaml").write_text(
        with_behaviour((ROOT / "contracts" / "card_transactions.yaml").read_text(), SECTION)
    )


def _rows(path) -> list[dict]:
    texts = ("tx_id", "ts", "customer_id", "card_id", "terminal_id", "mcc", "channel", "country")
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(texts, pa.string())))
    return table.to_pylist()


@pytest.mark.slow
def test_served_features_are_the_offline_rows(store, settings, azurite, redis_server, tmp_path, monkeypatch) -> None:
    from shared.bootstrap import bootstrap
    from shared.domain.contracts import get_contract
    from shared.domain.settings import get_settings
    from shared.etl.service import run_etl
    from shared.monitoring.served import load_served
    from training.generators.card_transactions import generate
    from training.materialise import materialise
    from training.pipeline import TrainConfig, run_training

    _contract(tmp_path)
    monkeypatch.setenv("CONTRACTS_DIR", str(tmp_path))
    monkeypatch.setenv("DATASET_NAME", "card_behaviour")
    monkeypatch.setenv("ONLINE_STORE_URL", redis_server.url())
    monkeypatch.setenv("ONLINE_STORE_PASSWORD", redis_server.password)
    monkeypatch.setenv("STREAM_RETRY_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("DEADLETTER_SPOOL_DIR", str(tmp_path / "spool"))
    get_settings.cache_clear()
    clear_caches()
    settings = get_settings()
    contract = get_contract("card_behaviour")
    names = contract.behaviour.names()

    generate(HISTORY + LIVE, 7, tmp_path / "all.csv", fraud_rate=0.03)
    rows = _rows(tmp_path / "all.csv")
    history, live = rows[:HISTORY], rows[HISTORY:]
    pacsv.write_csv(pa.Table.from_pylist(history), tmp_path / "history.csv")
    store.put_bytes("raw", "history.csv", (tmp_path / "history.csv").read_bytes())
    run_etl(store, settings.etl, name="history.csv")

    # training appends the behavioural features, point in time; the model takes them after the transaction's own
    quick = dataclasses.replace(TrainConfig.from_settings(settings), search_trials=1)
    trained = run_training(store, config=settings.training, storage=settings.storage, run_config=quick)
    assert trained.promoted
    services = bootstrap()
    assert services.scorer.current().feature_names == tuple(contract.model_features)
    online = services.behaviour
    assert online is not None
    placed = materialise(store, contract, online)
    assert placed.transactions > 0 and placed.late == 0

    # the live rows arrive shuffled within the lateness bound: over HTTP (some requests twice), then the stream
    rng = np.random.default_rng(3)
    times = np.array([datetime.fromisoformat(r["ts"]).timestamp() for r in live])
    arrival = np.argsort(times + rng.uniform(0, 600, len(live)), kind="stable")
    sent: list[list[int]] = []  # the order rows were scored in (each request, each stream batch)
    half = len(live) // 2
    body = [{k: v for k, v in r.items() if k != "is_fraud"} for r in live]
    with running_server() as url, httpx.Client(base_url=url, timeout=30) as http:
        pos = 0
        while pos < half:
            batch = [int(i) for i in arrival[pos : min(half, pos + int(rng.integers(1, 25)))]]
            pos += len(batch)
            for _attempt in range(2 if rng.random() < 0.15 else 1):  # a client retrying the same request
                r = http.post("/api/score", json={"transactions": [body[i] for i in batch]})
                assert r.status_code == 200, r.text[:500]
                results = r.json()["results"]
                assert [x["behaviour"] for x in results] == ["ok"] * len(batch)
            sent.append(batch)
    services.close_recorder()

    processor = bootstrap().processor
    rest = [int(i) for i in arrival[half:]]
    when = datetime.now(UTC)
    events = [StreamEvent(json.dumps(body[i]).encode(), "0", n, when) for n, i in enumerate(rest)]
    cut = 0
    while cut < len(events):
        size = int(rng.integers(20, 120))
        outcome = processor.process(events[cut : cut + size])
        assert outcome.status == "processed", outcome
        sent.append(rest[cut : cut + size])
        cut += size
    again = processor.process(events[100:400])  # redelivered, cut differently: nothing is scored twice
    assert again.status == "redelivered"

    # every recorded vector against the builder, over what had arrived when each was scored
    today = datetime.now(UTC).date()
    served = load_served(store, today, today, features=names).to_pylist()
    by_id = {s["transaction_id"]: s for s in served}
    assert len(by_id) == len(live)
    all_rows = history + live
    ids = np.array([r["tx_id"] for r in all_rows], dtype=object)
    t_all = np.array([datetime.fromisoformat(r["ts"]).timestamp() for r in all_rows])
    label = np.array([r["is_fraud"] for r in history] + [np.nan] * len(live), dtype=np.float64)
    columns = {name: [r[name] for r in all_rows] for name in ("card_id", "terminal_id", "amount")}
    rank = np.concatenate([np.arange(HISTORY), np.full(len(live), -1)])
    step = HISTORY
    for batch in sent:  # a request's rows are placed in order: the later ones see the earlier ones
        for i in batch:
            if rank[HISTORY + i] < 0:
                rank[HISTORY + i] = step
                step += 1
    assert (rank >= 0).all()

    def builder(keep: np.ndarray) -> dict[str, np.ndarray]:
        h = history_of(
            contract, t_all[keep], ids[keep], {k: [v[j] for j in keep] for k, v in columns.items()}, label[keep]
        )
        return point_in_time(h, contract.behaviour, contract.time_zone)

    everyone = builder(np.arange(len(all_rows)))
    cards, terminals = np.array(columns["card_id"], dtype=object), np.array(columns["terminal_id"], dtype=object)
    order_key = [(t, str(i)) for t, i in zip(t_all, ids, strict=True)]
    recomputed = 0
    for i in range(len(live)):
        e = HISTORY + i
        # an earlier transaction of the same card or terminal that arrived after this one was scored
        behind = [
            x
            for x in range(HISTORY, len(all_rows))
            if order_key[x] < order_key[e]
            and rank[x] > rank[e]
            and (
                columns["card_id"][x] == columns["card_id"][e] or columns["terminal_id"][x] == columns["terminal_id"][e]
            )
        ]
        if behind:
            mine = (cards == cards[e]) | (terminals == terminals[e])  # no one else's rows change its features
            keep = np.flatnonzero((rank <= rank[e]) & mine)
            built, at = builder(keep), int(np.flatnonzero(keep == e)[0])
            recomputed += 1
        else:
            built, at = everyone, e
        expected = np.array([built[n][at] for n in names], dtype=np.float32)
        got = np.array([by_id[live[i]["tx_id"]][n] for n in names], dtype=np.float32)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=live[i]["tx_id"])
    assert recomputed < len(live) // 4  # most rows had their whole history when scored

    # verdicts landing weeks later: placed in the online store (known from labelled_at), and the labelled rows
    # fed back to training with what their behaviour is computed from (pseudonyms only)
    from shared.adapters.online_store import record_key
    from shared.monitoring.feedback import land_labels

    verdicts = live[:40]
    lines = ["transaction_id,label,labelled_at,source"]
    lines += [f"{r['tx_id']},1,{datetime.fromtimestamp(t_all[HISTORY + i] + 3600, UTC):%Y-%m-%dT%H:%M:%SZ},chargeback"
              for i, r in enumerate(verdicts)]  # fmt: skip
    store.put_bytes("raw", "labels/late.csv", ("\n".join(lines) + "\n").encode())
    landed = land_labels(store, settings.monitoring, name="labels/late.csv", online=online)
    assert landed.feedback is not None and landed.feedback.written == len(verdicts)
    terminal = verdicts[0]["terminal_id"]
    [record] = online.store.read([record_key("card_behaviour", "terminal_id", terminal)])
    assert record.state is not None
    frauds = decode(record.state).frauds
    assert verdicts[0]["tx_id"] in frauds and frauds[verdicts[0]["tx_id"]].known == t_all[HISTORY] + 3600
    fed = landed.feedback.path.removeprefix("curated/")
    table = pq.read_table(io.BytesIO(store.get_bytes("curated", fed)[0]))
    assert {"card_id", "terminal_id", "tx_id", "ts"} <= set(table.column_names)
    assert verdicts[0]["card_id"] not in table.column("card_id").to_pylist()  # the card's pseudonym, not the card

    # the daily check recomputes a sample of the day's served rows offline: none differs
    from shared.monitoring.service import run_monitor
    from shared.monitoring.skew import check_skew

    outcome = run_monitor(store, settings.monitoring, day=today)
    skew = outcome.behaviour_skew
    assert skew["sampled"] == min(500, len(live)) and skew["differ"] == 0, skew
    [verdict] = [v for v in outcome.verdicts if v.check == "behaviour_skew_share"]
    assert verdict.level == "ok"
    # records whose behaviour was served wrong (one feature off by one): the check names it and alerts
    for name in store.list_names("predictions"):
        if name.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(store.get_bytes("predictions", name)[0]))
            column = table.column_names.index("card_count_amount_1h")
            wrong = pa.compute.add(table.column(column), pa.scalar(1.0, pa.float32()))
            out = io.BytesIO()
            pq.write_table(table.set_column(column, "card_count_amount_1h", wrong), out)
            store.put_bytes("predictions", name, out.getvalue(), overwrite=True)
    found = check_skew(store, contract, today)
    assert found.alert and found.differ >= found.sampled // 3 and found.worst["feature"] == "card_count_amount_1h"


def _setting_up(tmp_path, monkeypatch, url: str, password: str) -> None:
    from shared.domain.settings import get_settings

    _contract(tmp_path)
    monkeypatch.setenv("CONTRACTS_DIR", str(tmp_path))
    monkeypatch.setenv("DATASET_NAME", "card_behaviour")
    monkeypatch.setenv("ONLINE_STORE_URL", url)
    monkeypatch.setenv("ONLINE_STORE_PASSWORD", password)
    get_settings.cache_clear()
    clear_caches()


@pytest.mark.slow
def test_erasure_removes_state_and_a_store_that_is_down_is_said(
    store, settings, azurite, redis_server, tmp_path, monkeypatch
):
    from cli.devtools.models import publish_contract_model
    from cli.server import free_port
    from shared.adapters.online_store import record_key
    from shared.bootstrap import bootstrap
    from shared.domain.contracts import get_contract
    from shared.domain.settings import get_settings
    from shared.etl.service import run_etl
    from shared.governance.gdpr import erase
    from training.generators.card_transactions import generate
    from training.materialise import materialise

    _setting_up(tmp_path, monkeypatch, redis_server.url(), redis_server.password)
    contract = get_contract("card_behaviour")
    generate(3_300, 11, tmp_path / "all.csv", fraud_rate=0.03)
    lines = (tmp_path / "all.csv").read_text().splitlines()
    (tmp_path / "rows.csv").write_text("\n".join(lines[:3_001]) + "\n")
    shuffled = lines[3_001:]
    np.random.default_rng(0).shuffle(shuffled)  # a file of later payments, in no particular order
    (tmp_path / "tail.csv").write_text("\n".join([lines[0], *shuffled]) + "\n")
    store.put_bytes("raw", "rows.csv", (tmp_path / "rows.csv").read_bytes())
    run_etl(store, get_settings().etl, name="rows.csv")
    publish_contract_model(store, get_settings().model_name, contract, tmp_path / "rows.csv", version="v1", trees=20)
    services = bootstrap()
    assert services.behaviour is not None
    first = materialise(store, contract, services.behaviour)
    # the CLI: filling again counts nothing twice (each entity's tail knows its ids; older ones are late)
    again = _fraudops("behaviour", "materialise", env_conn=azurite, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["transactions"] == first.transactions
    status = _fraudops("behaviour", "status", env_conn=azurite, cwd=ROOT)
    held = json.loads(status.stdout.strip().splitlines()[-1])
    assert status.returncode == 0 and held["entities"] > 0 and held["bytes"] > 0, status.stderr[-2000:]
    # a file scored in batch: placed in time order, each row scored with the builder's features
    from cli.devtools.models import contract_rows
    from shared.scoring.batch import score_file

    done = score_file(
        tmp_path / "tail.csv", tmp_path / "scored.csv", services.scorer, contract,
        online=services.behaviour, pseudonymise=services.pseudonymise,
    )  # fmt: skip
    assert done.scored == 300
    scored = pacsv.read_csv(
        tmp_path / "scored.csv", convert_options=pacsv.ConvertOptions(column_types={"transaction_id": pa.string()})
    )
    assert set(scored.column("behaviour").to_pylist()) == {"ok"}
    x_all, _, _, texts = contract_rows(contract, tmp_path / "all.csv")  # the builder over every row
    model = services.scorer.current()
    expected = model.predict_proba(model.encode(x_all[3_000:], {k: v[3_000:] for k, v in texts.items()}))
    by_id = dict(
        zip(scored.column("transaction_id").to_pylist(), scored.column("fraud_probability").to_pylist(), strict=True)
    )
    tail_ids = [r["tx_id"] for r in _rows(tmp_path / "all.csv")[3_000:]]
    np.testing.assert_allclose([by_id[t] for t in tail_ids], expected, atol=1e-6)

    rows = _rows(tmp_path / "rows.csv")
    clear = rows[-1]["card_id"]
    end = datetime.fromisoformat(rows[-1]["ts"]).timestamp() + 1.0
    card = services.pseudonymise(clear)
    probe = Event(end, "probe", {"card_id": card, "terminal_id": None}, {"amount": 1.0}, {"terminal_id": None})
    [record] = services.behaviour.store.read([record_key("card_behaviour", "card_id", card)])
    assert record.state is not None
    seen = services.behaviour.online.plans["card_id"].features(decode(record.state), probe)
    assert seen["card_count_amount_7d"] == sum(r["card_id"] == clear for r in rows)  # all in 7 days, each once
    customer = rows[0]["customer_id"]
    cards = {services.pseudonymise(r["card_id"]) for r in rows if r["customer_id"] == customer}
    client = services.behaviour.store.client  # type: ignore[attr-defined]
    assert all(client.exists(record_key("card_behaviour", "card_id", c)) for c in cards)

    outcome = erase(
        store, services.pseudonymise, customer, actor="test", dataset="card_behaviour", online=services.behaviour
    )
    assert outcome.online_states_removed == len(cards) > 0
    assert not any(client.exists(record_key("card_behaviour", "card_id", c)) for c in cards)

    body = [{k: v for k, v in r.items() if k != "is_fraud"} for r in rows[100:103]]
    with running_server() as url:  # without an id, a retry would be counted twice: refused, with the field named
        r = httpx.post(f"{url}/api/score", json={"transactions": [{**body[0], "tx_id": None}]})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tx_id", r.text

    _setting_up(tmp_path, monkeypatch, f"redis://127.0.0.1:{free_port()}/0", "x")  # nothing listens there
    with running_server() as url:
        r = httpx.post(f"{url}/api/score", json={"transactions": body})
        assert r.status_code == 200, r.text
        assert [x["behaviour"] for x in r.json()["results"]] == ["unavailable"] * 3
        assert all(0.0 <= x["fraud_probability"] <= 1.0 for x in r.json()["results"])
    monkeypatch.setenv("ONLINE_STORE_UNAVAILABLE", "refuse")
    get_settings.cache_clear()
    clear_caches()
    with running_server() as url:
        r = httpx.post(f"{url}/api/score", json={"transactions": body})
        assert r.status_code == 503 and "configured to refuse" in r.json()["detail"], r.text
