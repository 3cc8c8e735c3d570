"""Dataset contracts at run time: what a dataset's columns are, their types, roles and rules.

A dataset is declared by a contract file (``contracts/<name>.yaml``, read by
:mod:`shared.domain.contract_file`); a bank adds one without a release. The ETL, training, scoring,
monitoring and governance read everything about a dataset from its contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from shared.domain import layout
from shared.domain.behaviour import Behaviour

Role = Literal["feature", "time", "label", "id"]
FLOAT32_MAX = 3.4028234663852886e38  # models read float32; a larger magnitude would become infinity


class ColumnType(enum.StrEnum):
    """A column's type as a contract file declares it."""

    FLOAT = "float"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    STRING = "string"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class Column:
    """One column: its name, type, role and rules (a range is inclusive)."""

    name: str
    role: Role = "feature"
    type: ColumnType = ColumnType.FLOAT
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None  # a closed set; None: any value (the model learns the frequent ones)
    personal: bool = False  # pseudonymised at every edge, never stored in clear
    unit: str = ""
    description: str = ""
    max_chars: int | None = None

    @property
    def dtype(self) -> Literal["float64", "int8", "string", "timestamp"]:
        """How the paths hold the column: float64 numbers (NaN for missing), int8 labels, text, or time."""
        if self.type in (ColumnType.STRING, ColumnType.CATEGORICAL):
            return "string"
        if self.type is ColumnType.TIMESTAMP:
            return "timestamp"
        return "int8" if self.role == "label" else "float64"

    @property
    def required(self) -> bool:
        """Whether every row must hold a value (a nullable column may be missing, even from a whole file)."""
        return not self.nullable


@dataclass(frozen=True)
class Roles:
    """What the columns mean: the label, the event time, the ids and the entities (customer, card...)."""

    label: str
    positive: int = 1
    meaning: str = "positive"
    event_time: str | None = None
    transaction_id: str | None = None
    amount: str | None = None
    entities: tuple[tuple[str, str], ...] = ()  # (kind, column), sorted by kind


@dataclass(frozen=True)
class DatasetContract:
    """What a dataset looks like on arrival and what the model reads from it (built from a contract file)."""

    name: str
    columns: tuple[Column, ...]
    max_field_chars: int = 64
    description: str = ""
    roles: Roles | None = None
    cost_missed: float = 10.0
    cost_false_alarm: float = 1.0
    time_zone: str = "UTC"
    behaviour: Behaviour = field(default_factory=Behaviour)  # declared behavioural features (issue 38)
    sha256: str = ""  # of the validated file's canonical form: what a model's manifest records
    input_sha256: str = ""  # of what shapes a model's input (the features' and label's names, types, rules)
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "_hash", hash((self.name, self.columns, self.max_field_chars, self.sha256)))

    def __hash__(self) -> int:  # computed once: the scoring path looks its decoder up by contract per request
        return self._hash

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """The transaction's own features, as a request sends them (``model_features`` adds the behavioural ones)."""
        return [c.name for c in self.columns if c.role == "feature"]

    @property
    def model_features(self) -> list[str]:
        """The model's input, in the order the ONNX input expects: the features, then the behavioural ones."""
        return self.feature_names + self.behaviour.names()

    @property
    def numeric_names(self) -> list[str]:
        return [c.name for c in self.columns if c.dtype in ("float64", "int8")]

    @property
    def label(self) -> Column | None:
        return next((c for c in self.columns if c.role == "label"), None)

    @property
    def time_column(self) -> Column | None:
        return next((c for c in self.columns if c.role == "time"), None)

    @property
    def id_names(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "id"]

    @property
    def personal_names(self) -> list[str]:
        """Columns holding personal data: pseudonymised before anything is stored."""
        return [c.name for c in self.columns if c.personal]

    @property
    def transaction_id(self) -> str | None:
        return self.roles.transaction_id if self.roles else None

    @property
    def amount(self) -> str | None:
        return self.roles.amount if self.roles else None

    @property
    def customer(self) -> str | None:
        """The column holding the customer (the entity access and erasure are asked about), if any."""
        return self.entity("customer")

    def entity(self, kind: str) -> str | None:
        """The column holding entity ``kind`` (customer, card, terminal...), if the contract declares one."""
        return dict(self.roles.entities).get(kind) if self.roles else None

    def required_names(self, *, labelled: bool) -> list[str]:
        """Columns a file must have; the label only when the dataset is for training."""
        return [c.name for c in self.columns if c.required and (labelled or c.role != "label")]


CUSTOMER_ID = "customer_id"  # pseudonymised at every edge (shared.domain.pseudonym): never stored in clear

# Delayed labels (chargebacks, investigators' verdicts): a contract of their own, never a training dataset
# by itself (no file in contracts/). They land in raw/labels/ and are joined to the recorded predictions.
LABELS_PREFIX = layout.RAW_LABELS_PREFIX
LABELS = DatasetContract(
    name="labels",
    description=(
        "What was later learnt about a served transaction: transaction_id (as scored), label (1 = fraud, "
        "0 = genuine), labelled_at (ISO 8601 time of the verdict, UTC when no offset is given), source "
        "(chargeback, investigator, customer...)."
    ),
    columns=(
        Column("transaction_id", role="id", type=ColumnType.STRING),
        Column("label", role="label", type=ColumnType.INTEGER, allowed=(0.0, 1.0)),
        Column("labelled_at", role="time", type=ColumnType.STRING),
        Column("source", role="id", type=ColumnType.STRING, nullable=True),
    ),
    roles=Roles(label="label", transaction_id="transaction_id"),
)
