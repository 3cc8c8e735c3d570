"""Dataset contracts: the one declarative place that says what a dataset's columns are.

A second dataset is added by writing another ``DatasetContract`` and registering it in
``CONTRACTS``; the ETL, training and scoring code read everything from the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.domain import layout

Role = Literal["feature", "time", "label", "id"]
FLOAT32_MAX = 3.4028234663852886e38  # models read float32; a larger magnitude would become infinity


@dataclass(frozen=True)
class Column:
    """One column: its name, role, type and allowed range (inclusive)."""

    name: str
    role: Role = "feature"
    dtype: Literal["float64", "int8", "string"] = "float64"
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[float, ...] | None = None
    required: bool = True


@dataclass(frozen=True)
class DatasetContract:
    """What a dataset looks like on arrival and what the model reads from it."""

    name: str
    columns: tuple[Column, ...]
    max_field_chars: int = 64
    description: str = ""
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "_hash", hash((self.name, self.columns, self.max_field_chars, self.description)))

    def __hash__(self) -> int:  # computed once: the scoring path looks its decoder up by contract per request
        return self._hash

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """The model's input, in the order the ONNX input expects."""
        return [c.name for c in self.columns if c.role == "feature"]

    @property
    def numeric_names(self) -> list[str]:
        return [c.name for c in self.columns if c.dtype != "string"]

    @property
    def label(self) -> Column | None:
        return next((c for c in self.columns if c.role == "label"), None)

    @property
    def time_column(self) -> Column | None:
        return next((c for c in self.columns if c.role == "time"), None)

    @property
    def id_names(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "id"]

    def required_names(self, *, labelled: bool) -> list[str]:
        """Columns a file must have; the label only when the dataset is for training."""
        return [c.name for c in self.columns if c.required and (labelled or c.role != "label")]


CREDITCARD = DatasetContract(
    name="creditcard",
    description=(
        "Kaggle / ULB 'Credit Card Fraud Detection': Time (seconds since the first transaction), "
        "V1..V28 (PCA components), Amount, Class (1 = fraud)."
    ),
    columns=(
        Column("Time", role="time", minimum=0.0),
        *(Column(f"V{i}") for i in range(1, 29)),
        Column("Amount", minimum=0.0),
        Column("Class", role="label", dtype="int8", allowed=(0.0, 1.0)),
        Column("transaction_id", role="id", dtype="string", required=False),
        Column("customer_id", role="id", dtype="string", required=False),
    ),
)

CONTRACTS: dict[str, DatasetContract] = {CREDITCARD.name: CREDITCARD}
CUSTOMER_ID = "customer_id"  # pseudonymised at every edge (shared.domain.pseudonym): never stored in clear

# Delayed labels (chargebacks, investigators' verdicts): a contract of their own, never a training dataset
# by itself (not in CONTRACTS). They land in raw/labels/ and are joined to the recorded predictions.
LABELS_PREFIX = layout.RAW_LABELS_PREFIX
LABELS = DatasetContract(
    name="labels",
    description=(
        "What was later learnt about a served transaction: transaction_id (as scored), label (1 = fraud, "
        "0 = genuine), labelled_at (ISO 8601 time of the verdict, UTC when no offset is given), source "
        "(chargeback, investigator, customer...)."
    ),
    columns=(
        Column("transaction_id", role="id", dtype="string"),
        Column("label", role="label", dtype="int8", allowed=(0.0, 1.0)),
        Column("labelled_at", role="time", dtype="string"),
        Column("source", role="id", dtype="string", required=False),
    ),
)


def get_contract(name: str) -> DatasetContract:
    """The contract registered under ``name``; a clear error for an unknown one."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(CONTRACTS)}") from None
