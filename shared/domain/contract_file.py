"""A dataset contract as a bank writes it: a YAML (or JSON) file, validated by a typed model.

Every error names the file, the line and the rule (``ContractFileError``): a typo in a key, an
unknown type, a duplicate column or key, no label, a role naming no column. The validated model is
turned into the runtime :class:`shared.domain.contract.DatasetContract` that every path reads.

The format (``docs``: "Bring your own data"; ``contracts/*.yaml`` are complete examples)::

    name: card_transactions            # lower case, digits, _ (the dataset's name in paths and routes)
    description: ...
    time_zone: Europe/Paris            # calendar features are computed in this zone
    costs: {missed_positive: 10, false_alarm: 1}
    roles:
      event_time: ts                   # a timestamp, or seconds as a number
      label: {column: is_fraud, positive: 1, meaning: fraud}
      transaction_id: tx_id
      amount: amount
      entities: {customer: customer_id, card: card_id, terminal: terminal_id}
    columns:
      - {name: amount, type: float, minimum: 0, unit: EUR, description: ...}
      - {name: mcc, type: categorical, description: merchant category code}
      - {name: country, type: categorical, nullable: true}
      - {name: customer_id, type: string, personal: true}

Features are the float, integer, boolean and categorical columns that hold no role (``feature:
false`` leaves one out). A column that is ``nullable`` may be missing from a row or from a whole file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.domain.behaviour import Aggregates, Behaviour, BehaviourError, Distinct, FraudShare, seconds_of, window_of
from shared.domain.contract import FLOAT32_MAX, Column, ColumnType, DatasetContract, Role, Roles

FORMAT_VERSION = 1
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
COLUMN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
TYPES = ("float", "integer", "boolean", "categorical", "string", "timestamp")
FEATURE_TYPES = {"float", "integer", "boolean", "categorical"}
MAX_COLUMNS = 1000
MAX_CATEGORIES = 10_000
MAX_FILE_BYTES = 1_000_000
# Names the platform's own records give their columns (a prediction record, a label): a feature, recorded
# beside them under its own name, may not take one (nor transaction_id or customer_id).
RESERVED = {"model_version", "fraud_probability", "is_fraud", "threshold", "request_id", "latency_ms", "scored_at"}
RESERVED |= {"source", "event_time", "label", "labelled_at"}

ColumnName = Annotated[str, Field(pattern=COLUMN_PATTERN)]


class ContractFileError(ValueError):
    """A contract file that cannot be used: where (file and line) and why, as a person reads it."""

    def __init__(self, source: str, problems: list[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}, line {line}: {text}" if line else f"{source}: {text}" for line, text in problems]
        super().__init__("\n".join(lines))


class _Strict(BaseModel):
    # defer_build: each model's validator is built when a contract file is first read, not at import (the
    # scoring app's cold start; scripts/bench_cold_start.py)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ColumnSpec(_Strict):
    name: ColumnName
    type: Literal["float", "integer", "boolean", "categorical", "string", "timestamp"]
    description: str = ""
    unit: str = ""
    nullable: bool = False
    personal: bool = False
    feature: bool | None = None
    minimum: float | None = None
    maximum: float | None = None
    allowed: list[float] | None = Field(default=None, min_length=1)
    categories: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=MAX_CATEGORIES
    )
    max_chars: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _fits_type(self) -> ColumnSpec:
        numeric = self.type in {"float", "integer"}
        if not numeric and (self.minimum is not None or self.maximum is not None or self.allowed is not None):
            raise ValueError(f"minimum, maximum and allowed apply to float and integer columns, not {self.type}")
        if self.categories is not None and self.type != "categorical":
            raise ValueError(f"categories apply to categorical columns, not {self.type}")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError("categories are listed twice")
        if self.max_chars is not None and self.type not in {"string", "categorical"}:
            raise ValueError(f"max_chars applies to string and categorical columns, not {self.type}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        for bound in (self.minimum, self.maximum):
            if bound is not None and abs(bound) > FLOAT32_MAX:
                raise ValueError("a bound beyond float32 (about 3.4e38) cannot be checked: the model reads float32")
        if self.type == "integer" and self.allowed and any(v != int(v) for v in self.allowed):
            raise ValueError("allowed values of an integer column must be whole numbers")
        if self.personal and self.type != "string":
            raise ValueError("personal data must be a string column: it is pseudonymised, never a model feature")
        if self.feature and self.type not in FEATURE_TYPES:
            raise ValueError(f"a {self.type} column cannot be a feature; features are {sorted(FEATURE_TYPES)}")
        return self


class LabelSpec(_Strict):
    column: ColumnName
    positive: int = 1
    meaning: str = Field(default="positive", min_length=1, max_length=80)


class RolesSpec(_Strict):
    label: LabelSpec
    event_time: ColumnName | None = None
    transaction_id: ColumnName | None = None
    amount: ColumnName | None = None
    entities: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ColumnName] = Field(default_factory=dict)


class CostsSpec(_Strict):
    missed_positive: float = Field(default=10.0, gt=0, description="the cost of a positive let through")
    false_alarm: float = Field(default=1.0, gt=0, description="the cost of a genuine case stopped")


EntityKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Stat = Literal["count", "sum", "mean", "max", "std"]
DEFAULT_STATS: tuple[Stat, ...] = ("count", "sum", "mean")
Durations = Annotated[list[str], Field(min_length=1, max_length=8)]


class WindowsSpec(_Strict):
    """Aggregates of a numeric column (``of``; none: ``count`` only) per entity over windows."""

    entity: EntityKind
    of: ColumnName | None = None
    over: Durations
    stats: list[Stat] | None = Field(default=None, min_length=1)  # default: count, sum, mean (count without of)


class DistinctSpec(_Strict):
    """How many different values of ``of`` an entity saw over windows (terminals per card...)."""

    entity: EntityKind
    of: ColumnName
    over: Durations


class AgainstMeanSpec(_Strict):
    entity: EntityKind
    over: str


class FraudShareSpec(_Strict):
    entity: EntityKind
    over: Durations


class BehaviourSpec(_Strict):
    """Behavioural features (``shared.domain.behaviour`` writes down their semantics)."""

    windows: list[WindowsSpec] = Field(default_factory=list, max_length=32)
    distinct: list[DistinctSpec] = Field(default_factory=list, max_length=16)
    since_previous: list[EntityKind] = Field(default_factory=list, max_length=8)
    amount_vs_mean: list[AgainstMeanSpec] = Field(default_factory=list, max_length=8)
    fraud_share: list[FraudShareSpec] = Field(default_factory=list, max_length=8)
    calendar: list[Literal["hour", "weekday", "night", "weekend"]] = Field(default_factory=list)
    label_delay: str = "7d"
    lateness: str = "10m"


class ContractSpec(_Strict):
    format: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    time_zone: str = "UTC"
    costs: CostsSpec = Field(default_factory=CostsSpec)
    max_field_chars: int = Field(default=64, ge=1, le=10_000)
    roles: RolesSpec
    columns: list[ColumnSpec] = Field(min_length=2, max_length=MAX_COLUMNS)
    behaviour: BehaviourSpec | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as UTC or Europe/Paris)") from None
        return zone

    @model_validator(mode="after")
    def _rules_hold(self) -> ContractSpec:
        by_name: dict[str, ColumnSpec] = {}
        for c in self.columns:
            if c.name in by_name:
                raise ValueError(f"column {c.name!r} is declared twice")
            by_name[c.name] = c
        used = self._roles_of(by_name)
        self._label_rules(by_name[self.roles.label.column])
        for c in self.columns:  # features are recorded beside the platform's own columns, under their names
            if _is_feature(c, used) and (c.name in RESERVED or c.name in ("transaction_id", "customer_id")):
                raise ValueError(f"feature {c.name!r} has a name the platform's prediction records use; rename it")
            if c.feature and c.name in used and used[c.name] != "amount":
                raise ValueError(f"column {c.name!r} holds the {used[c.name]} role and cannot be a feature")
        if not any(_is_feature(c, used) for c in self.columns):
            raise ValueError("no feature: declare at least one float, integer, boolean or categorical column")
        if self.behaviour is not None:
            names = to_behaviour(self).names()  # durations, entities and columns checked on the way
            time = by_name.get(self.roles.event_time or "")
            if time is not None and time.nullable:
                raise ValueError(
                    f"behaviour: the event time ({time.name}) must not be nullable: history is ordered by it"
                )
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"behaviour: feature {twice[0]!r} is declared twice (or two declarations name it)")
            taken = sorted(set(names) & set(by_name))
            if taken:
                raise ValueError(f"behaviour: feature {taken[0]!r} has the name of a column; rename the column")
        return self

    def _roles_of(self, by_name: dict[str, ColumnSpec]) -> dict[str, str]:
        """Each role's column checked (it exists, its type fits); the role of each column that holds one."""
        r = self.roles
        wanted: list[tuple[str, str | None, set[str]]] = [
            ("label", r.label.column, {"integer", "boolean"}),
            ("event_time", r.event_time, {"timestamp", "float", "integer"}),
            ("transaction_id", r.transaction_id, {"string"}),
            ("amount", r.amount, {"float", "integer"}),
            *((f"entities.{k}", v, {"string", "categorical", "integer"}) for k, v in r.entities.items()),
        ]
        used: dict[str, str] = {}
        for role, name, types in wanted:
            if name is None:
                continue
            if name not in by_name:
                raise ValueError(f"roles.{role} names {name!r}, which is not a column; columns: {_few(by_name)}")
            if by_name[name].type not in types:
                raise ValueError(f"roles.{role} is {name!r}, a {by_name[name].type} column; it must be {sorted(types)}")
            if name in used and role != "amount" and used[name] != "amount":
                raise ValueError(f"column {name!r} holds two roles: {used[name]} and {role}")
            used.setdefault(name, role)
        return used

    def _label_rules(self, label: ColumnSpec) -> None:
        if label.nullable:
            raise ValueError(f"the label {label.name!r} cannot be nullable (a file without it is a scoring file)")
        if label.type == "integer" and sorted(label.allowed or []) != [0.0, 1.0]:
            raise ValueError(f"the label {label.name!r} must declare allowed: [0, 1]")
        if self.roles.label.positive not in (0, 1):
            raise ValueError("the label's positive value must be 0 or 1")


def _few(names: dict[str, Any]) -> str:
    shown = sorted(names)[:12]
    return ", ".join(shown) + (f" and {len(names) - 12} more" if len(names) > 12 else "")


def _is_feature(c: ColumnSpec, used: dict[str, str]) -> bool:
    if c.feature is not None:
        return c.feature
    return c.type in FEATURE_TYPES and (c.name not in used or used[c.name] == "amount")


# ---------------------------------------------------------------------------------------- reading


class _Lines:
    """The line of each value in the file, by its path (``("columns", 3, "type")``)."""

    def __init__(self) -> None:
        self.at: dict[tuple[Any, ...], int] = {}

    def line(self, loc: tuple[Any, ...]) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.at:
                return self.at[loc[:end]]
        return None


def _plain(node: yaml.Node, path: tuple[Any, ...], lines: _Lines, problems: list[tuple[int | None, str]]) -> Any:
    lines.at[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.constructor.SafeConstructor().construct_object(key_node)
            if not isinstance(key, str):
                problems.append((key_node.start_mark.line + 1, f"{_where(path)}: a key must be text, not {key!r}"))
                continue
            if key in out:
                problems.append((key_node.start_mark.line + 1, f"{_where((*path, key))}: declared twice"))
                continue
            out[key] = _plain(value_node, (*path, key), lines, problems)
            lines.at[(*path, key)] = key_node.start_mark.line + 1  # a missing or wrong value: the key's line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), lines, problems) for i, item in enumerate(node.value)]
    return yaml.constructor.SafeConstructor().construct_object(node)


def _where(loc: tuple[Any, ...], doc: Any = None) -> str:
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
            if i >= 1 and loc[i - 1] == "columns" and isinstance(doc, dict):
                cols = doc.get("columns")
                name = cols[part].get("name") if isinstance(cols, list) and part < len(cols) else None
                if isinstance(cols, list) and isinstance(cols[part], dict) and isinstance(name, str):
                    text += f" ({name})"
        else:
            text += ("." if text else "") + str(part)
    return text or "the contract"


def _message(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "not a known key (a typo?)"
    if kind == "literal_error" and err["loc"][-1] == "type":
        return f"unknown type {err['input']!r}; use one of {', '.join(TYPES)}"
    if kind == "missing":
        return "required but missing"
    return str(msg).removeprefix("Value error, ")


def _located(err: Any, doc: dict[str, Any], lines: _Lines) -> tuple[int | None, str]:
    """An error's line and words; a rule about the whole contract points at the role or column it names."""
    loc, text = tuple(err["loc"]), _message(err)
    if loc:
        return lines.line(loc), f"{_where(loc, doc)}: {text}"
    if role := re.match(r"roles\.([a-z_]+)(?:\.([a-z0-9_]+))?", text):
        return lines.line(("roles", *(g for g in role.groups() if g))), text
    if part := re.match(r"behaviour(?:\.([a-z_]+))?", text):
        return lines.line(("behaviour", *(g for g in part.groups() if g))), text
    listed = doc.get("columns")
    columns: list[Any] = listed if isinstance(listed, list) else []
    if named := re.search(r"(?:column|feature|label) '([A-Za-z0-9_]+)'", text):
        # the last declaration of the name: for a column declared twice, the second one
        at = [i for i, c in enumerate(columns) if isinstance(c, dict) and c.get("name") == named.group(1)]
        if at:
            return lines.line(("columns", at[-1])), text
    return lines.line(()), text


def parse_contract(text: str | bytes, source: str = "<contract>") -> DatasetContract:
    """The contract in ``text`` (YAML or JSON), or a ``ContractFileError`` naming ``source``, lines and rules."""
    if len(text) > MAX_FILE_BYTES:
        raise ContractFileError(source, [(None, f"the file is over {MAX_FILE_BYTES:,} bytes")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc)
        raise ContractFileError(
            source, [(mark.line + 1 if mark else None, f"not valid YAML or JSON: {what}")]
        ) from None
    if node is None:
        raise ContractFileError(source, [(None, "the file is empty")])
    lines, problems = _Lines(), list[tuple[int | None, str]]()
    doc = _plain(node, (), lines, problems)
    if problems:
        raise ContractFileError(source, problems)
    if not isinstance(doc, dict):
        raise ContractFileError(source, [(1, "a contract is a mapping of keys (name, roles, columns...)")])
    try:
        spec = ContractSpec.model_validate(doc)
    except ValidationError as exc:
        found = [_located(e, doc, lines) for e in exc.errors()]
        raise ContractFileError(source, found) from None
    return to_contract(spec)


def read_contract(path: Path) -> DatasetContract:
    """The contract in the file at ``path`` (errors name the file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContractFileError(str(path), [(None, f"cannot be read: {exc.strerror or exc}")]) from None
    contract = parse_contract(data, str(path))
    if path.stem != contract.name:
        raise ContractFileError(
            str(path), [(None, f"declares name {contract.name!r}; name the file {contract.name}{path.suffix}")]
        )
    return contract


def to_contract(spec: ContractSpec) -> DatasetContract:
    """The runtime contract of a validated file."""
    r = spec.roles
    roles_of: dict[str, str] = {}
    for role, name in (("label", r.label.column), ("event_time", r.event_time), ("transaction_id", r.transaction_id)):
        if name:
            roles_of[name] = role
    for name in r.entities.values():
        roles_of.setdefault(name, "entity")
    used = {n: ("amount" if n == r.amount else role) for n, role in roles_of.items()} | (
        {r.amount: "amount"} if r.amount and r.amount not in roles_of else {}
    )
    columns = tuple(
        Column(
            name=c.name,
            type=ColumnType(c.type),
            role=_legacy_role(roles_of.get(c.name), _is_feature(c, used)),
            nullable=c.nullable,
            minimum=c.minimum,
            maximum=c.maximum,
            allowed=tuple(c.allowed) if c.allowed else None,
            categories=tuple(c.categories) if c.categories else None,
            personal=c.personal,
            unit=c.unit,
            description=c.description.strip(),
            max_chars=c.max_chars,
        )
        for c in spec.columns
    )
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    shaping = [c.model_dump(mode="json", exclude={"description", "unit", "personal"}) for c in spec.columns]
    model_input: list[Any] = [c for c, col in zip(shaping, columns, strict=True) if col.role in ("feature", "label")]
    if spec.behaviour is not None:  # behavioural features shape the input too
        model_input.append({"behaviour": spec.behaviour.model_dump(mode="json")})
    return DatasetContract(
        name=spec.name,
        columns=columns,
        max_field_chars=spec.max_field_chars,
        description=" ".join(spec.description.split()),
        roles=Roles(
            label=r.label.column,
            positive=r.label.positive,
            meaning=r.label.meaning,
            event_time=r.event_time,
            transaction_id=r.transaction_id,
            amount=r.amount,
            entities=tuple(sorted(r.entities.items())),
        ),
        cost_missed=spec.costs.missed_positive,
        cost_false_alarm=spec.costs.false_alarm,
        time_zone=spec.time_zone,
        behaviour=to_behaviour(spec),
        sha256=hashlib.sha256(canonical.encode()).hexdigest(),
        input_sha256=hashlib.sha256(json.dumps(model_input, sort_keys=True).encode()).hexdigest(),
    )


class _Resolve:
    """The names a ``behaviour`` section uses, checked against the contract: entities, columns, durations."""

    def __init__(self, spec: ContractSpec) -> None:
        r = spec.roles
        self.entities, self.columns = r.entities, {c.name: c for c in spec.columns}
        self.roles = {
            r.label.column: "the label",
            r.event_time: "the event time",
            r.transaction_id: "the transaction id",
        }

    def key(self, entity: str, where: str) -> str:
        if entity not in self.entities:
            known = ", ".join(sorted(self.entities)) or "none"
            raise ValueError(f"behaviour.{where}: entity {entity!r} is not in roles.entities (declared: {known})")
        return self.entities[entity]

    def usable(self, name: str, where: str) -> str:
        if name in self.roles:  # a label read here would skip the rule on when labels are known
            raise ValueError(f"behaviour.{where}: {name!r} is {self.roles[name]}; it cannot be aggregated")
        if name not in self.columns:
            raise ValueError(f"behaviour.{where}: {name!r} is not a column")
        return name

    def number(self, name: str, where: str) -> str:
        if self.columns[self.usable(name, where)].type not in ("float", "integer", "boolean"):
            raise ValueError(f"behaviour.{where}: {name!r} is not a float, integer or boolean column")
        return name

    @staticmethod
    def windows(over: list[str], where: str) -> tuple[float, ...]:
        try:
            return tuple(sorted({window_of(w) for w in over}))
        except BehaviourError as exc:
            raise ValueError(f"behaviour.{where}: {exc}") from None

    def aggregates(self, w: WindowsSpec) -> Aggregates:
        stats = tuple(w.stats) if w.stats is not None else (DEFAULT_STATS if w.of else ("count",))
        if w.of is None and set(stats) != {"count"}:
            raise ValueError("behaviour.windows: stats other than count need a column (of)")
        of = self.number(w.of, "windows") if w.of else None
        return Aggregates(w.entity, self.key(w.entity, "windows"), of, self.windows(w.over, "windows"), stats)


def to_behaviour(spec: ContractSpec) -> Behaviour:
    """The runtime behaviour of a validated file's ``behaviour`` section (empty without one); ``ValueError``
    naming the section, for an entity the roles do not declare, a column that is not there, not a number
    or holding a role, or a duration that is not one."""
    b, r = spec.behaviour, spec.roles
    if b is None:
        return Behaviour()
    n = _Resolve(spec)
    _roles_needed(b, r)
    try:
        delay, lateness = seconds_of(b.label_delay), seconds_of(b.lateness)
    except BehaviourError as exc:
        raise ValueError(f"behaviour: {exc}") from None
    return Behaviour(
        aggregates=tuple(n.aggregates(w) for w in b.windows),
        distinct=tuple(
            Distinct(d.entity, n.key(d.entity, "distinct"), n.usable(d.of, "distinct"), n.windows(d.over, "distinct"))
            for d in b.distinct
        ),
        since_previous=tuple((e, n.key(e, "since_previous")) for e in b.since_previous),
        amount_vs_mean=tuple(
            (m.entity, n.key(m.entity, "amount_vs_mean"), n.windows([m.over], "amount_vs_mean")[0])
            for m in b.amount_vs_mean
        ),
        fraud_share=tuple(
            FraudShare(f.entity, n.key(f.entity, "fraud_share"), n.windows(f.over, "fraud_share"))
            for f in b.fraud_share
        ),
        calendar=tuple(b.calendar),
        amount=r.amount,
        label_delay=delay,
        lateness=lateness,
    )


def _roles_needed(b: BehaviourSpec, r: RolesSpec) -> None:
    if b.amount_vs_mean and r.amount is None:
        raise ValueError("behaviour.amount_vs_mean needs roles.amount")
    if b.calendar and r.event_time is None:
        raise ValueError("behaviour.calendar needs roles.event_time")
    if (b.windows or b.distinct or b.fraud_share or b.since_previous) and r.event_time is None:
        raise ValueError("behaviour: windows need roles.event_time (history is ordered by it)")


def _legacy_role(role: str | None, feature: bool) -> Role:
    if feature:
        return "feature"
    if role == "label":
        return "label"
    return "time" if role == "event_time" else "id"


def catalogue(contract: DatasetContract) -> dict[str, Any]:
    """What a contract declares, as a person reads it: roles, costs, and each column's type and meaning."""
    roles = contract.roles
    return {
        "dataset": contract.name,
        "description": contract.description,
        "sha256": contract.sha256,
        "roles": {
            "label": f"{contract.label.name} ({roles.meaning} = {roles.positive})"
            if contract.label and roles
            else None,
            "event_time": contract.time_column.name if contract.time_column else None,
            "transaction_id": contract.transaction_id,
            "amount": contract.amount,
            "entities": dict(roles.entities) if roles else {},
        },
        "costs": {"missed_positive": contract.cost_missed, "false_alarm": contract.cost_false_alarm},
        "time_zone": contract.time_zone,
        "features": len(contract.feature_names),
        "behaviour": contract.behaviour.names(),  # declared; computed by shared.domain.windows
        "columns": [
            {
                "name": c.name,
                "type": str(c.type),
                "role": c.role,
                "nullable": c.nullable,
                "personal": c.personal,
                **({"unit": c.unit} if c.unit else {}),
                **({"categories": list(c.categories)} if c.categories else {}),
                **({"minimum": c.minimum} if c.minimum is not None else {}),
                **({"maximum": c.maximum} if c.maximum is not None else {}),
                **({"allowed": list(c.allowed)} if c.allowed else {}),
                "description": c.description,
            }
            for c in contract.columns
        ],
    }


def _label(contract: DatasetContract) -> str:
    roles = contract.roles
    return f"{contract.label.name} ({roles.meaning} = {roles.positive})" if contract.label and roles else ""


_SAFE_NAME = re.compile(NAME_PATTERN)


def is_dataset_name(name: str) -> bool:
    """Whether ``name`` could name a dataset (paths and routes use it)."""
    return bool(_SAFE_NAME.match(name))
