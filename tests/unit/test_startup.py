"""The function apps' import pauses the garbage collector and freezes what it built (functions/startup.py)."""

from __future__ import annotations

import gc

import pytest

from functions.startup import collector_paused


def test_the_collector_is_paused_inside_and_restored_after_with_the_blocks_objects_frozen():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    with collector_paused():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]  # objects the collector would track
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(built)
    gc.unfreeze()


def test_an_import_that_raises_still_gives_the_collector_back():
    with pytest.raises(ImportError), collector_paused():
        raise ImportError("a broken blueprint")
    assert gc.isenabled()
    gc.unfreeze()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
