"""The online store filled from curated history: what makes the first transactions scored after a deployment,
or after the store was emptied, see the history the model was trained with.

The dataset's curated rows of the history's span (``Behaviour.span``: the longest window, at least a day)
before its newest event, plus the lateness bound and an hour of margin for the windows' steps, are placed in
(time, id) order through the same ``OnlineFeatures`` that scoring uses, in batches (two round trips each);
then each fraud label, known from the transaction's time plus the contract's ``label_delay`` (curated
history carries no ``labelled_at``), as the offline builder counts it. Placing is idempotent: a transaction
already in an entity's tail is skipped, and one older than an entity's tail (the store already holds newer
history) is refused as late, so running it twice, or over a store that has served since, counts nothing
twice.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.adapters.erasures import erased
from shared.domain.errors import TrainingError
from shared.domain.history import history_columns
from shared.domain.layout import CURATED
from shared.etl.manifest import files_of_version
from training.window import floats, read_part, seconds

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.contract import DatasetContract
    from shared.scoring.online import OnlineFeatures

log = logging.getLogger(__name__)

BATCH = 5_000
MARGIN = 3600.0  # an hour's step: a window's oldest step starts up to an hour before its span


@dataclass(frozen=True)
class Materialised:
    dataset_version: str
    transactions: int  # placed or already there
    late: int  # refused: the store held newer history for their entity
    frauds: int  # fraud labels placed


def materialise(
    store: BlobStore, contract: DatasetContract, online: OnlineFeatures, *, version: str | None = None
) -> Materialised:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.scoring.online import events_of

    if contract.behaviour.empty:
        raise TrainingError(f"dataset {contract.name} declares no behavioural features: there is nothing to place")
    time_col, label = contract.time_column, contract.label
    if time_col is None or contract.transaction_id is None or label is None:
        raise TrainingError(
            f"dataset {contract.name}: placing history needs the event time, the transaction id and the label roles"
        )
    version, files = files_of_version(store, contract.name, version)
    gone = erased(store)
    tables = [
        read_part(
            pq.ParquetFile(io.BytesIO(store.get_bytes(CURATED, f)[0])), contract, gone, features=False, history=True
        )
        for f in files
    ]
    table = pa.concat_tables(tables).select(history_columns(contract))
    t = seconds(table.column(time_col.name))
    keep = t >= np.nanmax(t) - contract.behaviour.span - contract.behaviour.lateness - MARGIN
    table, t = table.filter(pa.array(keep)), t[keep]
    ids = table.column(contract.transaction_id).to_pylist()
    order = np.lexsort((np.asarray(ids, dtype=str), t))
    table, t = table.take(pa.array(order)), t[order]
    ids = [ids[i] for i in order]
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    events = events_of(contract, columns, ids, t)  # keys are the curated pseudonyms already
    late = 0
    for start in range(0, len(events), BATCH):
        served = online.serve(events[start : start + BATCH])
        if "unavailable" in served.status:  # the store did not answer: say so, never "placed"
            raise TrainingError(
                f"the online store did not take the history (batch from row {start}): nothing is known to be placed "
                "from there on; run it again once the store answers (placing is idempotent)"
            )
        late += served.placed["late"]
    frauds = np.flatnonzero(floats(table.column(label.name)) == 1)
    delay = contract.behaviour.label_delay
    for i in frauds:
        online.label(str(ids[i]), float(t[i]), dict(events[i].keys), True, float(t[i]) + delay)
    log.info(
        "placed %d transactions of %s (%d late) and %d fraud labels in the online store",
        len(events),
        version,
        late,
        frauds.size,
    )
    return Materialised(version, len(events), late, int(frauds.size))
