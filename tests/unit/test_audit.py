"""The audit chain: sealed lines, a rewrite or removal named by ``verify``, concurrent writers that never
fork it, a retried append that is not written twice, and months chained together."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from shared.adapters.audit import CONTAINER, AuditLog
from shared.adapters.memory_store import MemoryBlobStore
from shared.domain.audit import GENESIS, Act, UnknownActError, verify
from shared.domain.documents.governance import AuditLine
from shared.domain.errors import ConcurrentUpdateError


@pytest.fixture
def store() -> MemoryBlobStore:
    s = MemoryBlobStore()
    s.ensure_containers()
    return s


def _clock(month: int):
    return lambda: datetime(2026, month, 15, 12, 0, tzinfo=UTC)


def _acts(log: AuditLog, n: int, actor: str = "admin-key:1a2b3c4d") -> list[AuditLine]:
    return [log.record(Act("promotion", actor, f"reason {i}", {"version": f"v{i}"})) for i in range(n)]


def test_each_line_holds_the_hash_of_the_one_before(store):
    log = AuditLog(store, clock=_clock(11))
    docs = _acts(log, 3)
    assert [d.seq for d in docs] == [0, 1, 2]
    assert docs[0].prev == GENESIS and docs[1].prev == docs[0].hash and docs[2].prev == docs[1].hash
    report = log.verify()
    assert report.intact and report.lines == 3 and report.head_seq == 2 and report.head_hash == docs[2].hash
    assert [e.reason for e in log.entries()] == ["reason 0", "reason 1", "reason 2"]


def _four_lines(store) -> tuple[AuditLog, str, list[bytes], dict]:
    """A chain of four acts: the log, its one part, its lines and the second line's document."""
    log = AuditLog(store, clock=_clock(11))
    _acts(log, 4)
    [(part, content)] = list(log.parts())
    lines = content.splitlines(keepends=True)
    return log, part, lines, json.loads(lines[1])


def _line(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def test_a_rewritten_line_is_named(store):
    log, part, lines, doc = _four_lines(store)
    doc["reason"] = "nothing to see here"  # the tamperer keeps every other field, the hash included
    lines[1] = _line(doc)
    store.put_bytes(CONTAINER, part, b"".join(lines))  # possible on Azurite; the WORM policy forbids it in Azure
    report = log.verify()
    assert not report.intact and report.broken.line == 2 and report.broken.part == part
    assert "changed after it was written" in report.broken.reason
    assert report.lines == 1 and report.head_seq == 0  # what still holds: the first line


def test_a_rehashed_rewrite_breaks_the_next_link_and_a_removed_line_too(store):
    from shared.domain.audit import digest

    _, part, lines, doc = _four_lines(store)
    content = b"".join(lines)
    doc["actor"] = "someone else"
    doc["hash"] = digest(doc)  # a careful tamperer recomputes this line's hash...
    rewritten = [*lines[:1], _line(doc), *lines[2:]]
    report = verify([(part, b"".join(rewritten))])
    assert report.broken.line == 3 and "does not follow the one before it" in report.broken.reason  # ...not the next
    report = verify([(part, b"".join([lines[0], *lines[2:]]))])  # a line removed
    assert report.broken.line == 2 and "does not follow" in report.broken.reason
    assert verify([(part, content + b"garbage\n")]).broken.reason.startswith("the line is not an audit entry")


def test_concurrent_writers_never_fork_the_chain(store):
    log = AuditLog(store, clock=_clock(11))
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(10):
                log.record(Act("admin_call", f"worker-{worker}", f"call {i}"))
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = log.verify()
    assert report.intact and report.lines == 40 and report.head_seq == 39
    assert sorted(e.seq for e in log.entries()) == list(range(40))


class _LostAnswer(MemoryBlobStore):
    """The append lands, but its answer is lost and the SDK's retry of it is refused (412): the writer
    cannot tell whether its line is in."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 1

    def append(self, container: str, name: str, data: bytes, *, position: int) -> int:
        length = super().append(container, name, data, position=position)
        if self.lost:
            self.lost -= 1
            raise ConcurrentUpdateError(f"{container}/{name} grew since it was read")
        return length


def test_a_retried_append_that_had_landed_is_not_written_twice():
    store = _LostAnswer()
    store.ensure_containers()
    log = AuditLog(store, clock=_clock(11))
    act = Act("rollback", "cli:ops", "bad model")
    doc = log.record(act)
    assert [e.id for e in log.entries()] == [act.id] and doc.seq == 0
    assert log.verify().intact


def test_the_chain_runs_on_across_months(store):
    november = _acts(AuditLog(store, clock=_clock(11)), 2)
    december = _acts(AuditLog(store, clock=_clock(12)), 2)
    log = AuditLog(store)
    sealed = log.entries("2026-11")[-1]  # November is closed by a line naming the next part, then chained on
    assert sealed.act == "part_sealed" and sealed.prev == november[-1].hash
    assert sealed.details == {"part": "chain/2026-11.jsonl", "next": "chain/2026-12.jsonl"}
    assert december[0].seq == 3 and december[0].prev == sealed.hash
    assert [name for name, _ in log.parts()] == ["chain/2026-11.jsonl", "chain/2026-12.jsonl"]
    assert log.verify().intact and log.verify().lines == 5
    assert [e.seq for e in log.entries("2026-12")] == [3, 4]
    # a whole month deleted is a broken link too
    store.delete(CONTAINER, "chain/2026-11.jsonl")
    assert "does not follow" in log.verify().broken.reason


def test_only_known_acts_are_recorded():
    with pytest.raises(UnknownActError, match="'lunch' is not an audited act"):
        Act("lunch", "me", "hungry")


def test_an_empty_part_left_by_a_crash_does_not_jam_the_month(store):
    """Issue 39, finding 7: a writer that crashed between creating the month's append blob and its first
    block left an empty part, and every later act failed (30 conflicts, then AuditWriteError)."""
    log = AuditLog(store, clock=_clock(11))
    store.put_bytes(CONTAINER, "chain/2026-11.jsonl", b"")  # created, never appended to
    [line] = _acts(log, 1)
    assert line.seq == 0 and log.verify().intact


def test_a_line_that_is_not_an_entry_is_skipped_by_writers_and_readers_and_named_by_verify(store, caplog):
    """Issue 39, finding 7: one non-JSON line broke ``record``, the registry and the monthly report."""
    log = AuditLog(store, clock=_clock(11))
    _acts(log, 2)
    [(part, content)] = list(log.parts())
    store.append(CONTAINER, part, b"not json at all\n", position=len(content))
    third = log.record(Act("promotion", "admin-key:1a2b3c4d", "after the junk", {"version": "v9"}))
    assert third.seq == 2  # chained after the last entry
    assert [e.reason for e in log.entries()] == ["reason 0", "reason 1", "after the junk"]
    assert "not an audit entry" in caplog.text
    report = log.verify()
    assert not report.intact and report.broken is not None and report.broken.line == 3


def test_a_foreign_blob_in_the_chain_folder_is_ignored_not_a_permanent_break(store, caplog):
    """Issue 39, finding 8: a junk blob that sorts first stopped verification for good."""
    log = AuditLog(store, clock=_clock(11))
    _acts(log, 2)
    store.put_bytes(CONTAINER, "chain/0000-junk.jsonl", b"anything\n")
    store.put_bytes(CONTAINER, "chain/2026-11.jsonl.bak", b"anything\n")
    report = log.verify()
    assert report.intact and report.lines == 2
    assert [e.reason for e in log.entries()] == ["reason 0", "reason 1"]
    assert "not chain parts" in caplog.text


def test_two_instances_straddling_a_month_boundary_do_not_fork_the_chain(store):
    """Issue 39, finding 8: an instance still in November and one already in December each chained a line to
    the same head (one in each month's part): a permanent false break. Now the first December write seals
    November; the November instance's append to the old part then fails, and it follows the seal."""
    november, december = AuditLog(store, clock=_clock(11)), AuditLog(store, clock=_clock(12))
    _acts(november, 2)
    real_tail = AuditLog._tail
    raced = []

    def racing_tail(self, part):
        found = real_tail(self, part)
        if self is november and not raced:  # November read its tail; December writes before it appends
            raced.append(_acts(december, 1)[0])
        return found

    AuditLog._tail = racing_tail
    try:
        late = november.record(Act("rollback", "admin-key:1a2b3c4d", "late november act"))
    finally:
        AuditLog._tail = real_tail
    report = AuditLog(store).verify()
    assert report.intact, report.broken
    assert late.prev == raced[0].hash and late.seq == raced[0].seq + 1  # after December's line, not forked
    assert [e.act for e in AuditLog(store).entries()] == [
        "promotion",
        "promotion",
        "part_sealed",
        "promotion",
        "rollback",
    ]


def test_a_part_is_sealed_before_the_block_cap_and_the_chain_goes_on(store):
    """Issue 39, finding 7: Azure caps an append blob at 50,000 blocks (one per line) and every act after that
    would fail for the rest of the month. A part is sealed before the cap; the month goes on in the next part."""
    log = AuditLog(store, clock=_clock(11), max_blocks=3)
    lines = _acts(log, 5)
    names = [name for name, _ in log.parts()]
    assert names == ["chain/2026-11.jsonl", "chain/2026-11.2.jsonl", "chain/2026-11.3.jsonl"]
    assert [len(content.splitlines()) for _, content in log.parts()] == [3, 3, 1]  # two acts and a seal, ...
    assert log.verify().intact and [e.reason for e in log.entries() if e.act == "promotion"] == [
        f"reason {i}" for i in range(5)
    ]
    assert [e.seq for e in log.entries("2026-11")] == list(range(7)) and lines[-1].seq == 6


def test_a_signed_chain_refuses_a_line_written_without_its_key(store):
    """Issue 39, finding 8: the chain was an unkeyed hash chain, so anyone who could append (the app identity,
    the Dask workers that run as it) wrote lines that verified ("approved by CRO"). Signed with the chain's key,
    a forged line (a valid hash, no valid signature) is the first broken link."""
    from shared.domain.audit import seal

    history = AuditLog(store, clock=_clock(11), key=None)
    _acts(history, 1)  # a line from before the key was set: hashed history, still valid
    signed = AuditLog(store, clock=_clock(11), key=b"chain-key")
    _acts(signed, 2)
    assert signed.verify().intact and signed.verify().signed == 2
    head = signed.entries()[-1]
    forged = seal(Act("promotion", "CRO", "approved by CRO", {"version": "v-evil"}), seq=head.seq + 1, prev=head.hash)
    [(part, content)] = list(signed.parts())
    store.append(CONTAINER, part, forged.to_json(), position=len(content))
    assert history.verify().intact  # without the key only the hashes are checked, and they hold
    report = signed.verify()
    assert not report.intact and report.broken.seq == 3 and "signature does not hold" in report.broken.reason
    wrong_key = seal(Act("promotion", "CRO", "again"), seq=4, prev=forged.hash, key=b"guessed")
    assert (
        wrong_key.mac
        and wrong_key.mac != seal(Act("promotion", "CRO", "again"), seq=4, prev=forged.hash, key=b"chain-key").mac
    )


def test_every_break_is_reported_not_only_the_first(store):
    """Issue 39, finding 8: ``verify`` stopped at the first broken link, so a second tampering further on went
    unreported until the first was explained. The walk goes on from each broken line: every break is named."""
    log = AuditLog(store, clock=_clock(11))
    _acts(log, 6)
    [(part, content)] = list(log.parts())
    lines = content.splitlines(keepends=True)
    for i in (1, 4):  # two lines rewritten in place, far apart
        doc = json.loads(lines[i])
        doc["reason"] = "rewritten"
        lines[i] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    store.put_bytes(CONTAINER, part, b"".join(lines), overwrite=True)
    report = log.verify()
    assert report.broken is not None and report.broken.seq == 1 and report.head_seq == 0  # the head: before it
    assert [(b.seq, "changed after it was written" in b.reason) for b in report.breaks] == [(1, True), (4, True)]


def test_a_process_without_the_key_does_not_break_a_signed_chain(store):
    """Review of issue 39: a Dask worker or a command without ``AUDIT_CHAIN_KEY`` appended unsigned lines after
    signed ones, a break WORM keeps for good. Such a process is refused with why; the chain stays intact."""
    from shared.adapters.audit import AuditWriteError

    _acts(AuditLog(store, clock=_clock(11), key=b"chain-key"), 2)
    keyless = AuditLog(store, clock=_clock(11), key=None)
    with pytest.raises(AuditWriteError, match="chain is signed and this process has no AUDIT_CHAIN_KEY"):
        keyless.record(Act("retrain_outcome", "dask worker", "trained"))
    assert AuditLog(store, key=b"chain-key").verify().intact
