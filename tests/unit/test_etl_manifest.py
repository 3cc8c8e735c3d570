"""The dataset manifest on the in-memory store: concurrent writers lose nothing, versions name their files."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from shared.etl import manifest


def _entry(i: int) -> manifest.CuratedFile:
    return manifest.CuratedFile(f"creditcard/f{i}.parquet", i, i, f"{i:064x}", f"raw/{i}", "e", "t")


def test_concurrent_writers_lose_nothing(memory_store):
    entries = [_entry(i) for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda e: manifest.add_files(memory_store, "creditcard", [e]), entries))
    m, _ = manifest.read_manifest(memory_store, "creditcard")
    assert sorted(f["path"] for f in m["files"]) == sorted(e.path for e in entries)
    assert m["version"] == manifest.version_of([(e.path, e.sha256) for e in entries])


def test_a_version_is_its_files_and_adding_the_same_files_again_changes_nothing(memory_store):
    first = manifest.add_files(memory_store, "creditcard", [_entry(1), _entry(2)])
    assert manifest.add_files(memory_store, "creditcard", [_entry(1), _entry(2)]) == first
    second = manifest.add_files(memory_store, "creditcard", [_entry(3)])
    assert second != first
    assert manifest.files_of_version(memory_store, "creditcard", first)[1] == [
        "creditcard/f1.parquet",
        "creditcard/f2.parquet",
    ]
    assert len(manifest.files_of_version(memory_store, "creditcard")[1]) == 3
