"""The keyed hash that replaces customer ids at every edge."""

from __future__ import annotations

from shared.domain.pseudonym import PATTERN, Pseudonymiser, pseudonymiser


def test_the_same_customer_has_the_same_pseudonym_under_one_key_only():
    a, b = Pseudonymiser(b"key-a"), Pseudonymiser(b"key-b")
    first = a("customer-42")
    assert first == a("customer-42") and PATTERN.fullmatch(first) and "customer" not in first
    assert a("customer-43") != first and b("customer-42") != first  # keyed: no key, no recomputing it
    # issue 39, finding 3: a value shaped like a pseudonym was stored as sent, so a caller who knew a victim's
    # pseudonym could add records to the victim's access answer; at an edge every value is hashed
    assert a(first) != first and PATTERN.fullmatch(a(first))
    assert a(None) is None and a("") == ""
    assert a.many(["x", "y", "x", None]) == [a("x"), a("y"), a("x"), None]


def test_without_a_key_the_development_key_is_used_never_the_clear_id():
    dev = pseudonymiser(None)
    assert PATTERN.fullmatch(dev("someone")) and dev("someone") != Pseudonymiser(b"production")("someone")


def test_every_spelling_of_one_id_is_one_pseudonym_and_case_is_kept():
    """Issue 39, finding 3: "Müller-0042" precomposed or decomposed, with a space before or after, or with a
    non-breaking hyphen gave different pseudonyms, so access and erasure missed the other spellings."""
    import unicodedata

    from shared.domain.pseudonym import Pseudonymiser

    p = Pseudonymiser(b"k")
    spellings = [
        "Müller-0042",
        unicodedata.normalize("NFD", "Müller-0042"),
        " Müller-0042",
        "Müller-0042\t",
        "Müller\u20110042",  # non-breaking hyphen
        "Müller\u22120042",  # minus sign
        "Müller-\uff10\uff10\uff14\uff12",  # full-width digits
    ]
    assert len({p(s) for s in spellings}) == 1
    assert p("MÜLLER-0042") != p("Müller-0042")  # case is the bank's: two ids
    assert p("   ") == "" and p(None) is None


def test_a_rotated_key_is_versioned_in_the_pseudonym_and_the_old_ones_are_still_found():
    """Issue 39, finding 3: the key had no version, so rotating it orphaned every stored pseudonym. The version
    travels in the pseudonym (``cust2_...``) and the previous keys give the customer's older pseudonyms."""
    from shared.domain.pseudonym import parse_key, pseudonymiser

    first = pseudonymiser("old secret")
    rotated = pseudonymiser("v2:new secret", '["old secret"]')
    assert parse_key("v2:new secret") == (2, b"new secret") and parse_key("old secret") == (1, b"old secret")
    old, new = first("ann"), rotated("ann")
    assert old.startswith("cust_") and new.startswith("cust2_") and PATTERN.fullmatch(new)
    assert rotated.every("ann") == (new, old) and first.every("ann") == (old,)
    assert rotated("Ann") != new  # case kept, under either key
    import pytest

    with pytest.raises(ValueError, match="write the new key as v2:<key>"):  # rotated without the version
        pseudonymiser("new secret", '["old secret"]')


def test_previous_keys_must_be_a_json_list_said_without_the_keys():
    import pytest
    from pydantic import ValidationError

    from shared.domain.settings import Settings

    with pytest.raises(ValidationError) as refused:
        Settings.model_validate({"CUSTOMER_PSEUDONYM_PREVIOUS_KEYS": "old-secret-not-json"})
    assert "JSON list of keys" in str(refused.value) and "old-secret-not-json" not in str(refused.value)
    assert Settings.model_validate({"CUSTOMER_PSEUDONYM_PREVIOUS_KEYS": '["v1:a"]'}).customer_pseudonym_previous_keys
