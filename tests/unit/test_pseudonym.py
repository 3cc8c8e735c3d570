"""The keyed hash that replaces customer ids at every edge."""

from __future__ import annotations

from shared.domain.pseudonym import PATTERN, Pseudonymiser, pseudonymiser


def test_the_same_customer_has_the_same_pseudonym_under_one_key_only():
    a, b = Pseudonymiser(b"key-a"), Pseudonymiser(b"key-b")
    first = a("customer-42")
    assert first == a("customer-42") and PATTERN.fullmatch(first) and "customer" not in first
    assert a("customer-43") != first and b("customer-42") != first  # keyed: no key, no recomputing it
    assert a(first) == first  # already a pseudonym (labelled predictions coming back): not hashed twice
    assert a(None) is None and a("") == ""
    assert a.many(["x", "y", "x", None]) == [a("x"), a("y"), a("x"), None]


def test_without_a_key_the_development_key_is_used_never_the_clear_id():
    dev = pseudonymiser(None)
    assert PATTERN.fullmatch(dev("someone")) and dev("someone") != Pseudonymiser(b"production")("someone")
