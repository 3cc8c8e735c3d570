"""Request bodies to a feature matrix: vectorised for good input, precise errors for bad input.

JSON first takes the typed path of ``typed_json`` (msgspec structs generated from the
contract). The general path parses JSON with orjson, pulls every row's features as one tuple with
``operator.itemgetter`` and proves the value types with ``set(map(type, ...))`` (C-level
iteration, no Python code per field), then checks finiteness and ranges for whole columns
with NumPy. Anything the fast path does not accept (a
string where a number belongs, a NaN literal, a missing or unknown field...) is re-validated
by the pydantic model of the contract, which names every offending field and row index; that
path runs only for requests that are rejected anyway. CSV bodies go through
``pyarrow.csv.read_csv`` the same way.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.domain.contract import ColumnType, DatasetContract
from shared.domain.errors import FraudOpsError
from shared.domain.rows import in_range, matrix_from_rows
from shared.domain.typed_rows import TypedRows, is_plain, optional, row_errors, typed_rows


class InvalidRequestError(FraudOpsError):
    """The body can never be scored; ``errors`` name each field and row (422), or the body is not JSON/CSV (400)."""

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None, *, status: int = 422) -> None:
        super().__init__(reason)
        self.errors = errors or [{"row": None, "field": None, "msg": reason}]
        self.status = status


class BatchTooLargeError(FraudOpsError):
    """More transactions than ``SCORE_MAX_BATCH``, or a body over ``SCORE_MAX_BODY_BYTES`` (413)."""


@dataclass(frozen=True)
class Batch:
    """Transactions ready to score: features in the model's order, ids, and the request's options."""

    x: np.ndarray
    ids: list[str | None]
    model_version: str | None = None
    explain: bool = False
    customers: list[str | None] | None = None  # as given; recorded with the prediction, never scored
    times: np.ndarray | None = None  # the contract's time column when sent (NaN where absent)
    categories: dict[str, np.ndarray] | None = None  # categorical features as sent (``x`` holds NaN there)
    columns: dict[str, np.ndarray] | None = None  # every column as sent (typed contracts): what behaviour reads
    behaviour: list[str] | None = None  # per transaction: ok, late or unavailable (contracts with behaviour)
    history_texts: dict[str, list[str | None]] | None = None  # entity keys (pseudonyms) the record keeps
    history_numbers: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


TOP_LEVEL = {"transactions", "model_version", "explain"}


def decode_json(body: bytes, contract: DatasetContract, *, max_batch: int) -> Batch:
    """A JSON body ``{"transactions": [...], "model_version"?: str, "explain"?: bool}``."""
    import orjson

    from api.typed_json import decode_typed

    plain = is_plain(contract)
    typed = decode_typed(body, contract, max_batch=max_batch) if plain else None
    if typed is not None:
        return Batch(*typed)

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson stops at 1024 levels; Python's json would recurse until it fails
            raise InvalidRequestError(
                "the body nests arrays or objects more than 1024 levels deep; a transaction is a flat object",
                status=400,
            ) from None
        try:  # Python's json also takes NaN/Infinity literals; they are then named as row errors
            doc = json.loads(body)
        except (ValueError, RecursionError) as err:
            raise InvalidRequestError(f"the body is not valid JSON ({str(err)[:200]})", status=400) from None
    if not isinstance(doc, dict):
        raise InvalidRequestError("the body must be a JSON object with a 'transactions' list")
    errors = [{"row": None, "field": k, "msg": "unknown field"} for k in doc if k not in TOP_LEVEL]
    version, explain = doc.get("model_version"), doc.get("explain", False)
    if version is not None and not isinstance(version, str):
        errors.append({"row": None, "field": "model_version", "msg": "must be a string"})
    if not isinstance(explain, bool):
        errors.append({"row": None, "field": "explain", "msg": "must be true or false"})
    rows = doc.get("transactions")
    if not isinstance(rows, list) or not rows:
        errors.append({"row": None, "field": "transactions", "msg": "must be a non-empty list of transactions"})
    if errors:
        raise InvalidRequestError(_summary(errors), errors)
    assert isinstance(rows, list)
    if not plain:
        if len(rows) > max_batch:
            raise BatchTooLargeError(f"batch of {len(rows)} transactions is over the limit of {max_batch}")
        return batch_of_typed(typed_rows(rows, contract), contract, version, bool(explain))
    if len(rows) > max_batch:
        raise BatchTooLargeError(f"batch of {len(rows)} transactions is over the limit of {max_batch}")
    x, ids = matrix_from_rows(rows, contract)
    if x is None:
        raise _row_errors(rows, contract)
    return Batch(x, ids, version, bool(explain), *_context_of_rows(rows, contract))


def _context_of_rows(rows: list[Any], contract: DatasetContract) -> tuple[list[str | None] | None, np.ndarray | None]:
    """Customer ids and times of checked rows (dicts), for the record of what was served."""
    time_name = contract.time_column.name if contract.time_column else None
    customer = contract.customer
    customers = [r.get(customer) for r in rows] if customer and any(customer in r for r in rows) else None
    times = None
    if time_name and any(time_name in r for r in rows):
        times = np.array([r.get(time_name) for r in rows], dtype=np.float64)
    return customers, times


def _context_of_struct(arr: Any, contract: DatasetContract) -> tuple[list[str | None] | None, np.ndarray | None]:
    """The same from a checked struct array."""
    names = {arr.type.field(i).name for i in range(arr.type.num_fields)}
    customers = arr.field(contract.customer).to_pylist() if contract.customer in names else None
    time_name = contract.time_column.name if contract.time_column else None
    times = None
    if time_name and time_name in names:
        times = arr.field(time_name).to_numpy(zero_copy_only=False).astype(np.float64)
    return customers, times


def _fast_struct(arr: Any, contract: DatasetContract) -> tuple[np.ndarray | None, list[str | None]]:
    """Checks and the feature matrix from a struct array of transactions, column by column."""
    import pyarrow as pa

    if not pa.types.is_struct(arr.type):
        return None, []
    rows = arr
    present = {arr.type.field(i).name for i in range(arr.type.num_fields)}
    if present - set(contract.names) or (contract.label and contract.label.name in present):
        return None, []
    features = contract.feature_names
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        if name not in present:
            return None, []
        column = arr.field(name)
        if column.null_count or not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            return None, []
        values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        if not in_range(values, contract.column(name)):
            return None, []
        x[:, j] = values
    for name in present - set(features):  # Time and ids: checked, not scored
        column = arr.field(name)
        spec = contract.column(name)
        if spec.dtype == "string":
            if column.null_count != len(column) and not pa.types.is_string(column.type):
                return None, []
            if (
                pa.types.is_string(column.type)
                and len(column)
                and max((len(s) for s in column.to_pylist() if s is not None), default=0) > contract.max_field_chars
            ):
                return None, []
        elif not (
            pa.types.is_floating(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type)
        ):
            return None, []
        else:
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            values = values[~np.isnan(values)] if column.null_count else values
            if not in_range(values, spec):
                return None, []
    tid = contract.transaction_id
    ids = arr.field(tid).to_pylist() if tid and tid in present else [None] * len(rows)
    return x, ids


def batch_of_typed(typed: TypedRows, contract: DatasetContract, version: str | None, explain: bool) -> Batch:
    """A batch from typed rows (``shared.domain.typed_rows``); 422 naming every refused row."""
    if not typed.verdicts.ok:
        errors = row_errors(typed)
        raise InvalidRequestError(_summary(errors), errors)
    n = typed.x.shape[0]
    ids = optional(typed.columns, contract.transaction_id)
    customers = optional(typed.columns, contract.customer)
    time = contract.time_column
    return Batch(
        typed.x,
        list(ids) if ids is not None else [None] * n,
        version,
        explain,
        list(customers) if customers is not None and any(c is not None for c in customers) else None,
        typed.columns[time.name] if time is not None else None,
        typed.categories or None,
        typed.columns,
    )


def _row_errors(rows: list[Any], contract: DatasetContract) -> InvalidRequestError:
    """Every offending field and row index, from the contract's pydantic model."""
    from pydantic import TypeAdapter, ValidationError

    from shared.domain.transaction_schema import transaction_model

    adapter: TypeAdapter[Any] = TypeAdapter(list[transaction_model(contract)])  # type: ignore[misc,arg-type]
    try:
        adapter.validate_python(rows)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False, include_input=False):
            loc = list(e["loc"])
            row = loc[0] if loc and isinstance(loc[0], int) else None
            field = ".".join(str(p) for p in loc[1:]) or None
            errors.append({"row": row, "field": field, "msg": e["msg"]})
        return InvalidRequestError(_summary(errors), errors)
    return InvalidRequestError("the transactions could not be read as numbers in the contract's columns")


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = " ".join(
        p
        for p in (
            f"row {first['row']}" if first["row"] is not None else "",
            f"field {first['field']}" if first["field"] else "",
        )
        if p
    )
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


def decode_csv(body: bytes, contract: DatasetContract, *, max_batch: int) -> Batch:
    """A CSV body with a header row; the contract's feature columns required, ids and Time optional."""
    if not body.strip():
        raise InvalidRequestError("the CSV body is empty; send a header row and at least one transaction")
    plain = is_plain(contract)
    fast = _csv_typed(body, contract, max_batch=max_batch) if plain else None
    if fast is not None:
        return fast
    table = _csv_text(body, contract, max_batch)
    typed = _typed(table, contract) if plain else None
    if typed is not None:
        struct = typed.to_struct_array().combine_chunks()
        x, ids = _fast_struct(struct, contract)
        if x is not None:
            return Batch(x, ids, None, False, *_context_of_struct(struct, contract))
    errors = _header_errors(table.column_names, contract)
    if errors:
        raise InvalidRequestError(_summary(errors), errors)
    if not plain:
        return _csv_of_contract(table, contract)
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:  # empty cells are missing values; numbers are parsed by the same rules as JSON
        for name in list(row):
            value = row[name]
            if value == "":
                del row[name]
            elif contract.column(name).dtype != "string":
                row[name] = _number(value)
    x, ids = matrix_from_rows(rows, contract)
    if x is None:
        raise _row_errors(rows, contract)
    return Batch(x, ids, None, False, *_context_of_rows(rows, contract))


def _csv_text(body: bytes, contract: DatasetContract, max_batch: int) -> Any:
    """The CSV body as a table of text; 400 for what is not CSV, 422 or 413 for no rows or too many."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in contract.names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"the body is not a readable CSV table ({exc})", status=400) from None
    twice = _repeated(table.column_names)
    if twice:
        raise InvalidRequestError(
            f"the CSV header names column {twice[0]!r} more than once; name each column once", status=400
        )
    if table.num_rows == 0:
        raise InvalidRequestError("the CSV has a header but no transactions")
    if table.num_rows > max_batch:
        raise BatchTooLargeError(f"batch of {table.num_rows} transactions is over the limit of {max_batch}")
    return table


def _header_errors(names: list[str], contract: DatasetContract) -> list[dict[str, Any]]:
    """A CSV header's unknown columns (the label among them) and missing features."""
    label = contract.label.name if contract.label else None
    errors = [
        {"row": None, "field": c, "msg": "unknown column"} for c in names if c not in contract.names or c == label
    ]
    required = [c for c in contract.feature_names if not contract.column(c).nullable]
    return errors + [{"row": None, "field": c, "msg": "required column is missing"} for c in required if c not in names]


def _csv_of_contract(table: Any, contract: DatasetContract) -> Batch:
    """A CSV table of text read by the ETL's typed rules (``shared.etl.validate``): 422 naming each refused row."""
    import pyarrow as pa

    from shared.etl.arrays import floats, objects, seconds
    from shared.etl.source import Batch as Rows
    from shared.etl.validate import validate

    n = table.num_rows
    columns = {c: table.column(c).combine_chunks() for c in table.column_names}
    checked = validate(Rows(columns, np.arange(n, dtype=np.int64)), contract)
    if len(checked.bad_lines):
        errors = [
            {"row": int(row), "field": next((c for c in columns if reason.startswith(c + " ")), None), "msg": reason}
            for row, reason in zip(checked.bad_lines, checked.bad_reasons, strict=True)
        ]
        raise InvalidRequestError(_summary(errors), errors)
    valid = checked.valid
    x = np.full((n, len(contract.feature_names)), np.nan, dtype=np.float32)
    categories: dict[str, np.ndarray] = {}
    for j, name in enumerate(contract.feature_names):
        if contract.column(name).type is ColumnType.CATEGORICAL:
            categories[name] = objects(valid.column(name).cast(pa.string()))
        else:
            with np.errstate(over="ignore"):
                x[:, j] = floats(valid.column(name))

    def text(name: str | None) -> list[str | None] | None:
        return valid.column(name).to_pylist() if name and name in valid.column_names else None

    time = contract.time_column
    times = seconds(valid.column(time.name)) if time is not None and time.name in valid.column_names else None
    return Batch(
        x, text(contract.transaction_id) or [None] * n, None, False, text(contract.customer), times, categories
    )


PARALLEL_CSV_BYTES = 256 * 1024  # above this a CSV body is parsed in four blocks on Arrow's thread pool


def _csv_read_options(size: int) -> Any:
    """One thread for a small body; four blocks in parallel for a big one (a 1,000-row batch parses in
    about 60% of the time on two cores, while the ONNX session that follows is idle anyway)."""
    import pyarrow.csv as pacsv

    if size <= PARALLEL_CSV_BYTES:
        return pacsv.ReadOptions(use_threads=False)
    return pacsv.ReadOptions(use_threads=True, block_size=size // 4 + 1)


def _repeated(names: list[str]) -> list[str]:
    """The names a header repeats, in order of first repetition."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if name in seen and name not in out:
            out.append(name)
        seen.add(name)
    return out


def _csv_typed(body: bytes, contract: DatasetContract, *, max_batch: int) -> Batch | None:
    """The fast path: Arrow parses the numbers itself (no string columns, no casts); ``None`` on anything odd."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {c.name: pa.string() if c.dtype == "string" else pa.float64() for c in contract.columns}
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=_csv_read_options(len(body)),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if not 0 < table.num_rows <= max_batch or len(set(table.column_names)) < table.num_columns:
        return None
    struct = table.to_struct_array().combine_chunks()
    x, ids = _fast_struct(struct, contract)
    return Batch(x, ids, None, False, *_context_of_struct(struct, contract)) if x is not None else None


def _typed(table: Any, contract: DatasetContract) -> Any:
    """The string table with numeric columns cast to float64 (vectorised); ``None`` when a cell is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        columns = [
            pc.cast(pc.if_else(pc.equal(table[c], ""), pa.scalar(None, pa.string()), table[c]), pa.float64())
            if c in contract.names and contract.column(c).dtype != "string"
            else table[c]
            for c in table.column_names
        ]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pa.table(columns, names=table.column_names)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
