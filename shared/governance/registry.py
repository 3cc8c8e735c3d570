"""The model registry's operations for people: list, show, promote, roll back, deprecate.

Every move goes through ``ModelStore.promote`` (verified manifest digest, ETag-conditional pointer,
deprecated versions refused, audited) and every deprecation through ``ModelStore.deprecate``. The
promotion history (who, when, why, from which version) is read from the audit chain, the one record
of every act, so there is no second history to drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.adapters.audit import AuditLog
from shared.adapters.model_store import ModelStore
from shared.domain.audit import Actor, PendingAct
from shared.domain.documents.governance import AuditLine
from shared.domain.documents.model import Deprecation
from shared.domain.errors import ModelDeprecatedError, RegistryError

MOVES = ("promotion", "rollback")


def moved(line: AuditLine | PendingAct) -> dict[str, Any]:
    """What a promotion or rollback's audit line says, in brief: the summary the CLI and the admin route give. A
    move whose line could not be written yet took effect all the same: said, with why (``audit_pending``)."""
    if isinstance(line, PendingAct):
        details = line.act.details
        return {
            "champion": details["version"],
            "previous": details["previous"],
            "act": line.act.act,
            "audit_seq": None,
            "audit_pending": line.why,
        }
    details = line.details
    return {
        "champion": details["version"],
        "previous": details["previous"],
        "act": line.act,
        "audit_seq": line.seq,
    }


@dataclass(frozen=True)
class Registry:
    models: ModelStore
    audit: AuditLog

    def history(self, version: str | None = None) -> list[dict[str, Any]]:
        """Promotions, rollbacks and deprecations of this model name (of ``version`` alone if given), oldest first."""
        out = []
        for entry in self.audit.entries():
            details = entry.details or {}
            if entry.act not in (*MOVES, "deprecation") or details.get("model") != self.models.model_name:
                continue
            if version is None or version in (details.get("version"), details.get("previous")):
                out.append(
                    {
                        "act": entry.act,
                        "at": entry.at,
                        "actor": entry.who,
                        "reason": entry.reason,
                        "version": details.get("version"),
                        "previous": details.get("previous"),
                        "audit_seq": entry.seq,
                    }
                )
        return out

    def versions(self) -> list[dict[str, Any]]:
        """Every version, newest first: kind, when, headline metrics, champion or deprecated, times promoted."""
        champion = self.models.pointer()
        deprecated = self.models.deprecated()
        promoted: dict[str, int] = {}
        for move in self.history():
            if move["act"] in MOVES:
                promoted[move["version"]] = promoted.get(move["version"], 0) + 1
        rows = []
        for version in sorted(self.models.versions(), reverse=True):
            manifest = self.models.manifest(version)
            metrics = manifest.metrics or {}
            rows.append(
                {
                    "version": version,
                    "kind": manifest.kind,
                    "created_at": manifest.created_at,
                    "auc": metrics.get("auc"),
                    "pr_auc": metrics.get("pr_auc"),
                    "threshold": manifest.threshold,
                    "champion": champion is not None and champion.version == version,
                    "deprecated": version in deprecated,
                    "times_promoted": promoted.get(version, 0),
                }
            )
        return rows

    def show(self, version: str) -> dict[str, Any]:
        manifest = self.models.manifest(version)
        champion = self.models.pointer()
        deprecation = self.models.deprecation(version)
        return {
            "version": version,
            "kind": manifest.kind,
            "created_at": manifest.created_at,
            "dataset_version": manifest.dataset_version,
            "threshold": manifest.threshold,
            "metrics": manifest.metrics,
            "cost_fn": manifest.cost_fn,
            "cost_fp": manifest.cost_fp,
            "sha256": manifest.sha256,
            "champion": champion is not None and champion.version == version,
            "deprecation": deprecation.to_dict() if deprecation is not None else None,
            "history": self.history(version),
        }

    def promote(self, version: str, *, actor: str | Actor, reason: str) -> AuditLine | PendingAct:
        """Make ``version`` the champion (any published, non-deprecated version whose files match its manifest)."""
        self.models.file(version, "model.onnx")  # its bytes still match the manifest's digest
        pointer = self.models.pointer()
        if pointer is not None and pointer.version == version:
            raise RegistryError(f"model version {version} is already the champion")
        return self.models.promote(
            version, expected_etag=pointer.etag if pointer else None, reason=reason, actor=actor, act="promotion"
        )

    def rollback(self, *, to: str | None, actor: str | Actor, reason: str) -> AuditLine | PendingAct:
        """Move the champion back to ``to`` (default: the champion before the current one), an earlier version."""
        pointer = self.models.pointer()
        if pointer is None:
            raise RegistryError("there is no champion to roll back from")
        target = to or self._previous_champion(pointer.version)
        if target == pointer.version:
            raise RegistryError(f"model version {target} is already the champion")
        current_created = self.models.manifest(pointer.version).created_at
        target_created = self.models.manifest(target).created_at
        if target_created >= current_created:
            raise RegistryError(
                f"model version {target} is not earlier than the champion {pointer.version}; a rollback goes back "
                "to an earlier version (use promote to move forward)"
            )
        if self.models.deprecation(target) is not None:
            raise ModelDeprecatedError(f"model version {target} is deprecated; roll back to another version")
        self.models.file(target, "model.onnx")
        return self.models.promote(target, expected_etag=pointer.etag, reason=reason, actor=actor, act="rollback")

    def _previous_champion(self, current: str) -> str:
        for move in reversed(self.history()):
            if move["act"] in MOVES and move["version"] == current and move["previous"]:
                return str(move["previous"])
        raise RegistryError(f"the audit chain records no champion before {current}; name the version to roll back to")

    def deprecate(self, version: str, *, actor: str | Actor, reason: str) -> Deprecation:
        return self.models.deprecate(version, reason=reason, actor=actor)
