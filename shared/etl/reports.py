"""The ETL's run reports: one per landed file, as a typed document (``EtlReport``) and a readable page.

``reports/etl/<dataset>/<tag>.json`` says what the ETL did with one raw file (processed or rejected,
its rows, parts, quarantine and profile); ``.html`` beside it is the data-quality page. They are also
the record of which raw files the ETL has handled (``processed_files``), which the GDPR access and
erasure read to tell the landed files already curated from those still waiting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.adapters import documents
from shared.domain import layout
from shared.domain.documents.etl import EtlReport
from shared.domain.results import as_dict
from shared.etl.profile import render_html

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.etl.outcome import EtlOutcome

HTML_TYPE = "text/html; charset=utf-8"


def report_of(outcome: EtlOutcome) -> EtlReport:
    """The stored report of one run's outcome."""
    return EtlReport.model_validate(as_dict(outcome))


def write_report(store: BlobStore, dataset: str, tag: str, outcome: EtlOutcome) -> None:
    """Write the run's report (``layout.etl_report``) and its data-quality page beside it."""
    report = report_of(outcome)
    documents.write(store, layout.REPORTS, layout.etl_report(dataset, tag), report)
    store.put_bytes(
        layout.REPORTS,
        layout.etl_report(dataset, tag, "html"),
        render_html(report.to_dict()).encode(),
        content_type=HTML_TYPE,
    )


def processed_files(store: BlobStore, dataset: str | None = None) -> list[EtlReport]:
    """The report of every raw file the ETL has handled (of one dataset, or of every one: ``None``).

    Each says which raw file (``raw_name``, ``source``, ``source_etag``, ``input_bytes``), what became of it
    (``status``: processed or rejected, ``outputs``, ``quarantine``) and where the report is (``report``).
    """
    return [
        documents.read(store, layout.REPORTS, name, EtlReport)[0]
        for name in store.list_names(layout.REPORTS, layout.etl_reports(dataset))
        if name.endswith(".json")
    ]
