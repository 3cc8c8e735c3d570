"""PSI and the training profile: zero for the same distribution, large for a shifted one."""

from __future__ import annotations

import numpy as np
import pytest

from shared.domain import drift


def _data(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    x[:, 1] += shift
    return x


def test_psi_of_identical_shares_is_zero_and_grows_with_difference():
    e = np.array([0.25, 0.25, 0.25, 0.25])
    assert drift.psi(e, e) == 0.0
    small, large = drift.psi(e, np.array([0.3, 0.2, 0.25, 0.25])), drift.psi(e, np.array([0.7, 0.1, 0.1, 0.1]))
    assert 0 < small < 0.1 < large


def test_psi_matches_the_formula_with_an_empty_bin():
    e, a = np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])
    expected = sum((ai - ei) * np.log(ai / ei) for ei, ai in zip(np.maximum(e, 1e-4), a, strict=True))
    assert drift.psi(e, a) == pytest.approx(expected)


def test_profile_has_decile_shares():
    ref = drift.profile(_data(10_000, 1), ["a", "b", "c"])
    assert ref["rows"] == 10_000
    for feature in ref["features"].values():
        assert len(feature["edges"]) == 9 and sum(feature["shares"]) == pytest.approx(1.0)
        assert max(feature["shares"]) < 0.11


def test_same_distribution_does_not_drift_and_a_shifted_feature_does():
    names = ["a", "b", "c"]
    ref = drift.profile(_data(20_000, 1), names)
    same = drift.compare(ref, _data(5_000, 2), names, psi_threshold=0.2, alert_share=0.3)
    assert not same["alert"] and same["drifted_features"] == []
    assert max(f["psi"] for f in same["features"].values()) < 0.02
    shifted = drift.compare(ref, _data(5_000, 3, shift=1.0), names, psi_threshold=0.2, alert_share=0.3)
    assert shifted["drifted_features"] == ["b"] and shifted["alert"]  # 1 of 3 >= 0.3
    assert shifted["drifted_share"] == pytest.approx(1 / 3, abs=1e-3)


def test_constant_feature_and_unknown_feature():
    x = np.ones((100, 1))
    ref = drift.profile(x, ["k"])
    assert ref["features"]["k"]["edges"] == [1.0]
    assert drift.compare(ref, x, ["k"], psi_threshold=0.2, alert_share=0.5)["features"]["k"]["psi"] == 0.0
    with pytest.raises(ValueError, match="no other"):
        drift.compare(ref, x, ["other"], psi_threshold=0.2, alert_share=0.5)
