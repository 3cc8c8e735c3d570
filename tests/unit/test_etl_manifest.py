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
    assert sorted(f.path for f in m.files) == sorted(e.path for e in entries)
    assert m.version == manifest.version_of([(e.path, e.sha256) for e in entries])


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


def test_the_manifest_grows_linearly_with_the_files_not_quadratically(memory_store):
    """Issue 19, finding 17: every version used to copy the whole file list (a year of hourly files rewrote
    tens of millions of paths per run)."""
    sizes = {}
    versions = []
    for i in range(400):
        versions.append(manifest.add_files(memory_store, "creditcard", [_entry(i)]))
        if i + 1 in (200, 400):
            sizes[i + 1] = len(memory_store.get_bytes("curated", manifest.manifest_name("creditcard"))[0])
    assert sizes[400] / sizes[200] < 2.1  # quadratic growth gives about 4
    # and every version still names exactly its files
    assert manifest.files_of_version(memory_store, "creditcard", versions[9])[1] == sorted(
        f"creditcard/f{i}.parquet" for i in range(10)
    )


def test_versions_written_before_the_counted_form_still_resolve(memory_store):
    import json

    legacy = {
        "dataset": "creditcard",
        "files": [{"path": "creditcard/a.parquet", "sha256": "0"}, {"path": "creditcard/b.parquet", "sha256": "1"}],
        "versions": [{"version": "old", "created_at": "t", "files": ["creditcard/a.parquet"]}],
        "version": "old",
    }
    memory_store.put_bytes("curated", manifest.manifest_name("creditcard"), json.dumps(legacy).encode())
    assert manifest.files_of_version(memory_store, "creditcard", "old") == ("old", ["creditcard/a.parquet"])


def test_a_legacy_manifest_is_written_back_with_its_entries_as_they_were(memory_store):
    """Today's manifests (no schema version; old entries lacking keys) still read, and a new file keeps them."""
    import json

    legacy = {
        "dataset": "creditcard",
        "files": [{"path": "creditcard/a.parquet", "sha256": "0"}],
        "versions": [{"version": "old", "created_at": "t", "files": ["creditcard/a.parquet"]}],
        "version": "old",
    }
    memory_store.put_bytes("curated", manifest.manifest_name("creditcard"), json.dumps(legacy).encode())
    new = manifest.add_files(memory_store, "creditcard", [_entry(1)])
    stored = json.loads(memory_store.get_bytes("curated", manifest.manifest_name("creditcard"))[0])
    assert stored["schema_version"] == 1 and stored["version"] == new
    assert stored["files"][0] == legacy["files"][0] and stored["versions"][0] == legacy["versions"][0]
    assert stored["files"][1] == {
        "path": "creditcard/f1.parquet",
        "rows": 1,
        "bytes": 1,
        "sha256": f"{1:064x}",
        "source_blob": "raw/1",
        "source_etag": "e",
        "ingested_at": "t",
    }
    assert set(stored["versions"][1]) == {"version", "created_at", "files_count"}
    assert manifest.files_of_version(memory_store, "creditcard", "old")[1] == ["creditcard/a.parquet"]


def test_a_replaced_file_takes_the_old_ones_place_and_names_it(memory_store):
    first = manifest.add_files(memory_store, "creditcard", [_entry(1), _entry(2)])
    rewritten = manifest.CuratedFile("creditcard/f1-erased.parquet", 0, 0, "f" * 64, "raw/1", "e", "t")
    second = manifest.replace_files(memory_store, "creditcard", {"creditcard/f1.parquet": rewritten})
    assert second != first
    assert manifest.replace_files(memory_store, "creditcard", {"creditcard/f1.parquet": rewritten}) == second
    m, _ = manifest.read_manifest(memory_store, "creditcard")
    assert [(f.path, f.replaces) for f in m.files] == [
        ("creditcard/f1-erased.parquet", "creditcard/f1.parquet"),
        ("creditcard/f2.parquet", None),
    ]
    assert manifest.files_of_version(memory_store, "creditcard", first)[1] == [
        "creditcard/f1-erased.parquet",
        "creditcard/f2.parquet",
    ]
