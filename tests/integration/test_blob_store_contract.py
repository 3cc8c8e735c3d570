"""One suite, two stores: the in-memory fake behaves as the real adapter does against Azurite."""

from __future__ import annotations

import io

import pytest

from shared.adapters.memory_store import MemoryBlobStore
from shared.domain.errors import BlobExistsError, BlobNotFoundError, ConcurrentUpdateError


@pytest.fixture(params=["memory", "azurite"])
def any_store(request):
    if request.param == "memory":
        s = MemoryBlobStore(chunk_bytes=3)
        s.ensure_containers()
        return s
    return request.getfixturevalue("store")


def test_create_only_writes_refuse_an_existing_blob(any_store):
    any_store.put_bytes("reports", "a.json", b"1", overwrite=False)
    with pytest.raises(BlobExistsError):
        any_store.put_bytes("reports", "a.json", b"2", overwrite=False)
    with pytest.raises(BlobExistsError):
        any_store.upload_stream("reports", "a.json", io.BytesIO(b"3"))
    assert any_store.get_bytes("reports", "a.json")[0] == b"1"


def test_conditional_writes_need_the_current_etag(any_store):
    first = any_store.put_bytes("federated", "s.json", b"v1")
    second = any_store.put_bytes("federated", "s.json", b"v2", if_match=first)
    assert second != first
    with pytest.raises(ConcurrentUpdateError):
        any_store.put_bytes("federated", "s.json", b"v3", if_match=first)
    with pytest.raises(ConcurrentUpdateError):
        any_store.put_bytes("federated", "never-written.json", b"v", if_match=first)
    assert any_store.get_bytes("federated", "s.json") == (b"v2", second)


def test_missing_blobs_and_deletes(any_store):
    with pytest.raises(BlobNotFoundError):
        any_store.get_bytes("raw", "nope.csv")
    with pytest.raises(BlobNotFoundError):
        any_store.info("raw", "nope.csv")
    with pytest.raises(BlobNotFoundError):
        list(any_store.download_chunks("raw", "nope.csv"))
    any_store.delete("raw", "nope.csv")  # deleting what is not there is not an error


def test_pinned_reads_refuse_a_changed_blob_and_chunks_join_to_the_blob(any_store):
    etag = any_store.put_bytes("raw", "f.csv", b"abcdefgh")
    assert b"".join(any_store.download_chunks("raw", "f.csv", etag=etag)) == b"abcdefgh"
    any_store.put_bytes("raw", "f.csv", b"changed")
    with pytest.raises(ConcurrentUpdateError):
        list(any_store.download_chunks("raw", "f.csv", etag=etag))
    info = any_store.info("raw", "f.csv")
    assert (info.size, info.container, info.name) == (7, "raw", "f.csv")


def test_listing_by_prefix_in_name_order(any_store):
    for name in ("b/2", "a/1", "b/1", "c"):
        any_store.put_bytes("curated", name, b"x")
    assert any_store.list_names("curated", "b/") == ["b/1", "b/2"]
    assert any_store.list_names("curated") == ["a/1", "b/1", "b/2", "c"]


def test_appends_land_only_at_the_length_the_writer_read(any_store):
    """The audit chain's primitive: an append lands only where the writer last saw the end, so two writers
    can never interleave or overwrite each other's lines; the loser re-reads and retries."""
    with pytest.raises(BlobNotFoundError):
        any_store.append("audit", "chain.jsonl", b"x\n", position=5)  # nothing to append to
    assert any_store.append("audit", "chain.jsonl", b"one\n", position=0) == 4
    with pytest.raises(ConcurrentUpdateError):
        any_store.append("audit", "chain.jsonl", b"other\n", position=0)  # created by someone else first
    assert any_store.append("audit", "chain.jsonl", b"two\n", position=4) == 8
    with pytest.raises(ConcurrentUpdateError):
        any_store.append("audit", "chain.jsonl", b"late\n", position=4)  # it grew since this writer read it
    assert any_store.get_bytes("audit", "chain.jsonl")[0] == b"one\ntwo\n"
    assert any_store.read_range("audit", "chain.jsonl", 4, 100) == b"two\n"
    assert any_store.read_range("audit", "chain.jsonl", 2, 3) == b"e\nt"
    assert any_store.info("audit", "chain.jsonl").size == 8
