"""docs/bring-your-own-data.md, followed as written: its contract (written by this test from the guide, not in
code) and its commands, in order, on a private Azurite, with a bank export of the guide's own columns."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from tests.conftest import ROOT
from tests.test_cli import _fraudops

GUIDE = ROOT / "docs" / "bring-your-own-data.md"
# the guide's export: card_transactions' generated columns under the bank's own names
RENAMED = {
    "tx_id": "txn_ref",
    "ts": "booked_at",
    "customer_id": "client_no",
    "card_id": "pan_token",
    "terminal_id": "merchant_id",
    "amount": "amount_eur",
    "card_present": "chip",
    "is_fraud": "fraud_flag",
}
CUSTOMER = "C003154"  # the guide's access example


def blocks(text: str) -> list[tuple[str, str, bool]]:
    """Each fenced block: (language, body, illustrative: the paragraph before it says so)."""
    found = []
    for m in re.finditer(r"```(\w+)\n(.*?)```", text, re.DOTALL):
        before = text[: m.start()].rstrip().splitlines()[-1] if text[: m.start()].strip() else ""
        found.append((m.group(1), m.group(2), "*illustrative*" in before))
    return found


def _bank_files(folder: Path) -> None:
    from training.generators.card_transactions import generate

    generate(54_000, 4, folder / "generated.csv", fraud_rate=0.02)
    texts = pacsv.ConvertOptions(column_types={"ts": pa.string(), "mcc": pa.string()}, strings_can_be_null=True)
    table = pacsv.read_csv(folder / "generated.csv", convert_options=texts)
    table = table.rename_columns([RENAMED.get(n, n) for n in table.column_names])
    export, recent = table.slice(0, 50_000), table.slice(50_000)
    clients = recent.column("client_no").to_pylist()
    clients[0] = CUSTOMER
    recent = recent.set_column(recent.column_names.index("client_no"), "client_no", pa.array(clients))
    pacsv.write_csv(export, folder / "export.csv")
    pacsv.write_csv(recent.drop_columns(["fraud_flag"]), folder / "recent.csv")
    now = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    lines = ["transaction_id,label,labelled_at,source"]
    lines += [
        f"{t},{y},{now},chargeback"
        for t, y in zip(recent["txn_ref"].to_pylist(), recent["fraud_flag"].to_pylist(), strict=True)
    ]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def test_the_guide_declares_a_contract_that_reads_and_marks_what_it_does_not_run() -> None:
    from shared.domain.contract_file import parse_contract

    found = blocks(GUIDE.read_text())
    [contract] = [body for lang, body, _ in found if lang == "yaml"]
    parsed = parse_contract(contract, "my_bank.yaml")
    assert parsed.name == "my_bank" and set(RENAMED.values()) <= set(parsed.names)
    run = [body for lang, body, illustrative in found if lang == "sh" and not illustrative]
    assert any("serve" in body for lang, body, ill in found if ill) and not any("serve" in b for b in run)


@pytest.mark.slow
def test_the_guide_runs_from_export_to_monitored_model(store, azurite, tmp_path, monkeypatch) -> None:
    found = blocks(GUIDE.read_text())
    [contract] = [body for lang, body, _ in found if lang == "yaml"]
    (tmp_path / "my_bank.yaml").write_text(contract)
    _bank_files(tmp_path)
    monkeypatch.setenv("CONTRACTS_DIR", str(tmp_path))  # "point CONTRACTS_DIR at the folder holding it"
    outputs: dict[str, dict] = {}
    for _, body, _ in (b for b in found if b[0] == "sh" and not b[2]):
        for line in body.strip().splitlines():
            args = shlex.split(line)
            assert args[0] == "fraudops", line
            r = _fraudops(*args[1:], env_conn=azurite, cwd=tmp_path, mlflow=tmp_path)
            assert r.returncode == 0, f"{line}\n{r.stderr[-3000:]}"
            outputs[" ".join(a for a in args[1:] if not a.startswith("-"))] = json.loads(
                r.stdout.strip().splitlines()[-1]
            )

    etl = next(v for k, v in outputs.items() if k.startswith("my_bank etl"))
    assert etl["rows_valid"] + etl["rows_quarantined"] + etl["rows_duplicate"] == 50_000 and etl["rows_valid"] > 49_000
    trained = next(v for k, v in outputs.items() if k.startswith("my_bank train"))
    assert trained["promoted"] and trained["auc"] > 0.7, json.dumps(trained)[:1500]
    replayed = next(v for k, v in outputs.items() if k.startswith("my_bank replay"))
    assert replayed["scored"] == 4_000 and replayed["deadlettered"] == 0
    monitored = next(v for k, v in outputs.items() if k.startswith("my_bank monitor"))
    assert monitored["labelled"] == 4_000
    access = json.loads((tmp_path / "access.json").read_text())
    assert access["records"] > 0  # found by the client number, which no blob holds in clear
    shown = next(v for k, v in outputs.items() if k.startswith("contract show"))
    assert shown["roles"]["entities"]["customer"] == "client_no" and shown["features"] == 5
    trial = pacsv.read_csv(tmp_path / "trial.csv")  # rows drawn from the contract, before any export
    assert trial.num_rows == 2_000 and trial.column_names == [c["name"] for c in shown["columns"]]
