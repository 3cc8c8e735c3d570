"""What a bank checks in what it is served: exact arrays, its window, and the served weights and scaler."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fraudops_bank import model as lr
from fraudops_bank.client import connect
from fraudops_bank.engines.numpy import NumpyEngine
from fraudops_bank.errors import BankError, ParametersError, ServedModelRefusedError, WindowTooSmallError
from fraudops_bank.run import build_parser
from fraudops_bank.served import ServedPolicy, check_arrays, check_model, check_window

POLICY = ServedPolicy()
N = 5


def _model(coef: np.ndarray, intercept: float, mean: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "coef": np.asarray(coef, np.float32),
        "intercept": np.array([intercept], np.float32),
        "scaler_mean": np.asarray(mean, np.float32),
        "scaler_scale": np.asarray(scale, np.float32),
    }


def _bank(rng: np.random.Generator, rows: int, *, mean: float, std: float) -> np.ndarray:
    return (mean + std * rng.standard_normal((rows, N))).astype(np.float32)


# --- the arrays' names and shapes ---


def test_the_exact_arrays_of_each_kind_are_taken() -> None:
    check_arrays(lr.stats_template(N), kind="statistics", n_features=N)
    check_arrays(_model(np.zeros(N), 0.0, np.zeros(N), np.ones(N)), kind="model", n_features=N)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda a: a.pop("scaler_scale"), "scaler_scale is missing"),
        (lambda a: a.update(trap=np.zeros(N, np.float32)), "trap is not one of them"),
        (lambda a: a.update(coef=np.zeros(N + 1, np.float32)), f"coef has shape ({N + 1},) instead of ({N},)"),
        (lambda a: a.update(intercept=np.zeros((1, 1), np.float32)), "intercept has shape (1, 1) instead of (1,)"),
    ],
)
def test_a_missing_extra_or_misshapen_array_is_refused_by_name(
    change: Callable[[dict[str, np.ndarray]], object], named: str
) -> None:
    arrays = _model(np.zeros(N), 0.0, np.zeros(N), np.ones(N))
    change(arrays)

    with pytest.raises(ParametersError) as refused:
        check_arrays(arrays, kind="model", n_features=N)

    assert named in refused.value.reason
    assert "coef (5,), intercept (1,), scaler_mean (5,), scaler_scale (5,)" in refused.value.reason  # what was expected


def test_statistics_arrays_served_for_a_model_round_and_an_unknown_kind_are_refused() -> None:
    with pytest.raises(ParametersError, match=r"coef is missing.*count is not one of them"):
        check_arrays(lr.stats_template(N), kind="model", n_features=N)
    with pytest.raises(ParametersError, match="kind 'gradients'"):
        check_arrays(lr.stats_template(N), kind="gradients", n_features=N)


# --- the window ---


def test_a_window_with_one_fraud_is_refused_with_its_counts() -> None:
    with pytest.raises(WindowTooSmallError) as refused:
        check_window(900, 1, POLICY)

    assert "1 fraud among 900 rows" in refused.value.reason
    assert "at least 20 frauds" in refused.value.reason and "1000 rows" in refused.value.reason


def test_a_window_needs_enough_legitimate_rows_too() -> None:
    with pytest.raises(WindowTooSmallError, match="5 legitimate rows and 1995 frauds"):
        check_window(2000, 1995, POLICY)


def test_a_window_with_enough_rows_and_frauds_is_taken() -> None:
    check_window(1000, 20, POLICY)
    check_window(1, 0, ServedPolicy(min_rows=1, min_frauds=0))  # lowered knowingly


def test_the_numpy_engine_counts_its_frauds() -> None:
    y = np.array([0, 1, 0, 1, 1, 0], np.float64)
    engine = NumpyEngine(np.zeros((6, 2), np.float32), y)

    assert engine.frauds == 3 and engine.rows == 6


# --- the served model ---


def _reconstruct(
    update: dict[str, np.ndarray], served: dict[str, np.ndarray], own: dict[str, np.ndarray]
) -> np.ndarray:
    """The operator's side of the attack: the one fraud row from the update, the bank's round-0 sums and its count.

    With a scale of 1e6 every logit stays at the intercept, so after ``lr.STEPS`` steps
    ``coef = a * S + c * F``: ``S`` the sum of the standardised rows (known from round 0), ``F`` that of
    the fraud rows, and ``a``, ``c`` follow from the intercept's known trajectory.
    """
    n, mean, scale = float(own["count"][0]), served["scaler_mean"].astype(np.float64), 1e6
    b, a, c = 0.0, 0.0, 0.0
    for _ in range(lr.STEPS):
        p = 1.0 / (1.0 + np.exp(-b))
        a = a * (1 - lr.LEARNING_RATE * lr.L2) - lr.LEARNING_RATE * p / n
        c = c * (1 - lr.LEARNING_RATE * lr.L2) + lr.LEARNING_RATE / n
        b -= lr.LEARNING_RATE * (p - 1 / n)  # one fraud among n
    s = (own["sum"].astype(np.float64) - n * mean) / scale
    return np.asarray(mean + scale * (update["coef"].astype(np.float64) - a * s) / c)


def test_the_reconstruction_attacks_scaler_is_refused() -> None:
    # Prepare: a bank with one fraud among 900 rows, and the operator's crafted model
    rng = np.random.default_rng(0)
    x, y = _bank(rng, 900, mean=0.0, std=1.0), np.zeros(900)
    y[17] = 1
    own = lr.sufficient_statistics(x)
    pooled = {k: own[k] + lr.sufficient_statistics(_bank(rng, 900, mean=0.2, std=1.0))[k] for k in own}
    served = _model(np.zeros(N), 0.0, lr.scaler_from(pooled)["mean"], np.full(N, 1e6))
    # the attack is real: training on it hands over the fraud row
    update = NumpyEngine(x, y).train(
        {"coef": served["coef"], "intercept": served["intercept"]},
        {"mean": served["scaler_mean"], "scale": served["scaler_scale"]},
        steps=lr.STEPS,
    )
    assert np.allclose(_reconstruct(update, served, own), x[17], atol=1e-3)

    # Execute
    with pytest.raises(ServedModelRefusedError) as refused:
        check_model(served, own, POLICY)

    # Assert: the first feature, how many others, the served value and the bank's own
    reason = refused.value.reason
    assert "scale for feature 0 is 1e+06" in reason and "so are 4 other features" in reason
    assert f"this bank's own spread ({float(np.std(x[:, 0], dtype=np.float64)):.3g})" in reason
    assert "(at most 100)" in reason and "expose this bank's rows" in reason


def test_an_extreme_coefficient_norm_is_refused() -> None:
    rng = np.random.default_rng(1)
    own = lr.sufficient_statistics(_bank(rng, 2000, mean=0.0, std=1.0))
    scaler = lr.scaler_from(own)

    with pytest.raises(ServedModelRefusedError, match=r"L2 norm of 1e\+03 \(at most 50\)"):
        check_model(_model(np.full(N, 1000 / np.sqrt(N)), 0.0, scaler["mean"], scaler["scale"]), own, POLICY)
    check_model(_model(np.full(N, 40 / np.sqrt(N)), -20.0, scaler["mean"], scaler["scale"]), own, POLICY)


def test_a_model_from_two_plausibly_different_banks_is_taken_by_both() -> None:
    # Prepare: bank B's means lie one of A's standard deviations away, its spread twice A's
    rng = np.random.default_rng(2)
    xa, xb = _bank(rng, 5000, mean=0.0, std=1.0), _bank(rng, 5000, mean=1.0, std=2.0)
    ya, yb = (rng.random(5000) < 0.02).astype(float), (rng.random(5000) < 0.02).astype(float)
    stats_a, stats_b = lr.sufficient_statistics(xa), lr.sufficient_statistics(xb)
    scaler = lr.scaler_from({k: stats_a[k] + stats_b[k] for k in stats_a})
    trained = lr.train_local(lr.initial(N), scaler, np.vstack([xa, xb]), np.concatenate([ya, yb]))
    served = _model(trained["coef"], float(trained["intercept"][0]), scaler["mean"], scaler["scale"])

    # Execute, Assert: neither bank refuses
    check_model(served, stats_a, POLICY)
    check_model(served, stats_b, POLICY)


def test_a_mean_far_from_the_banks_own_is_refused_by_feature() -> None:
    rng = np.random.default_rng(3)
    own = lr.sufficient_statistics(_bank(rng, 2000, mean=0.0, std=1.0))
    scaler = lr.scaler_from(own)
    mean = scaler["mean"].copy()
    mean[2] = 25.0

    with pytest.raises(ServedModelRefusedError, match=r"mean for feature 2 is 25, 2\d\.?\d* of this bank's own"):
        check_model(_model(np.zeros(N), 0.0, mean, scaler["scale"]), own, POLICY)


def test_a_scale_far_below_the_banks_own_spread_is_refused() -> None:
    rng = np.random.default_rng(4)
    own = lr.sufficient_statistics(_bank(rng, 2000, mean=0.0, std=1.0))
    scale = lr.scaler_from(own)["scale"].copy()
    scale[4] = 1e-4

    with pytest.raises(ServedModelRefusedError, match=r"scale for feature 4 is 0.0001, 1/\d+.* times smaller"):
        check_model(_model(np.zeros(N), 0.0, lr.scaler_from(own)["mean"], scale), own, POLICY)


def test_a_feature_constant_in_the_banks_data_does_not_divide_by_zero() -> None:
    # Prepare: feature 1 is a flag this bank never sets, that other banks set one time in ten
    rng = np.random.default_rng(5)
    x = _bank(rng, 2000, mean=0.0, std=1.0)
    x[:, 1] = 0.0
    others = _bank(rng, 2000, mean=0.0, std=1.0)
    others[:, 1] = rng.random(2000) < 0.1
    own = lr.sufficient_statistics(x)
    scaler = lr.scaler_from({k: own[k] + lr.sufficient_statistics(others)[k] for k in own})
    huge = scaler["scale"].copy()
    huge[1] = 1e6

    # Execute, Assert: floating-point errors raise, so a division by zero would fail the test
    with np.errstate(all="raise"):
        check_model(_model(np.zeros(N), 0.0, scaler["mean"], scaler["scale"]), own, POLICY)
        with pytest.raises(ServedModelRefusedError, match=r"feature 1 is 1e\+06.*constant at 0 in this bank's data"):
            check_model(_model(np.zeros(N), 0.0, scaler["mean"], huge), own, POLICY)


@pytest.mark.parametrize(("value", "rows"), [(0.3, (7777, 5000)), (123.456, (1001, 999)), (94813.7, (7777, 5000))])
def test_a_feature_constant_everywhere_is_taken_despite_float32_rounding(value: float, rows: tuple[int, int]) -> None:
    # the pooled scale of a constant is rounding noise (1e-6 up to 3e-4 of the value), as is the bank's own spread
    rng = np.random.default_rng(6)
    parts = [_bank(rng, n, mean=0.0, std=1.0) for n in rows]
    for part in parts:
        part[:, 3] = value
    own, other = (lr.sufficient_statistics(part) for part in parts)
    scaler = lr.scaler_from({k: own[k] + other[k] for k in own})

    check_model(_model(np.zeros(N), 0.0, scaler["mean"], scaler["scale"]), own, POLICY)


def test_a_nonpositive_or_infinite_served_scale_is_refused() -> None:
    own = lr.sufficient_statistics(_bank(np.random.default_rng(7), 2000, mean=0.0, std=1.0))
    scale = np.ones(N)
    scale[[1, 3]] = [0.0, np.inf]

    with pytest.raises(ServedModelRefusedError, match=r"feature 1 has mean 0 and scale 0.*so are 1 other feature"):
        check_model(_model(np.zeros(N), 0.0, np.zeros(N), scale), own, POLICY)


def test_a_policy_with_an_unusable_bound_is_refused() -> None:
    with pytest.raises(BankError, match="max_scale_ratio"):
        ServedPolicy(max_scale_ratio=0.5)
    with pytest.raises(BankError, match="max_coef_norm=nan"):
        ServedPolicy(max_coef_norm=float("nan"))


# --- the connection ---


def test_connect_refuses_http_unless_allowed() -> None:
    with pytest.raises(BankError) as refused:
        connect("http://app.example/?code=secret", function_key="k")
    assert "http://app.example would send the function key" in refused.value.reason
    assert "secret" not in refused.value.reason

    with connect("https://app.example", function_key="k") as http:
        assert str(http.base_url) == "https://app.example"
    with connect("http://127.0.0.1:7071", function_key="k", allow_http=True) as http:
        assert http.base_url.scheme == "http"


def test_the_client_command_takes_allow_http() -> None:
    base = ["client", "--bank", "b", "--url", "http://127.0.0.1:7071", "--data", "d.csv"]

    assert build_parser().parse_args([*base, "--allow-http"]).allow_http is True
    assert build_parser().parse_args(base).allow_http is False


def test_the_auc_is_the_mann_whitney_statistic_with_ties_counting_half():
    from sklearn.metrics import roc_auc_score

    from fraudops_bank import model as lr

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500) * 0.5 + y * 0.3, 2)  # many ties
    assert lr.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert lr.auc(np.zeros(5), p[:5]) is None


def test_the_numpy_engine_holds_out_the_last_fifth_of_the_time_span():
    from fraudops_bank.contract import Columns
    from fraudops_bank.engines.numpy import NumpyEngine

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3))
    y = (rng.random(1000) < 0.1).astype(int)
    times = np.linspace(0.0, 100.0, 1000)
    times[3] = np.nan  # a row without a time is trained on, never held out
    engine = NumpyEngine(x, y, Columns(("a", "b", "c"), "y", "t"), times)
    assert engine.holdout_rows == int((times > 80.0).sum()) and engine.rows == 1000 - engine.holdout_rows
    assert NumpyEngine(x, y, Columns(("a", "b", "c"), "y"), None).holdout_rows == 0
    assert NumpyEngine(x, y, Columns(("a", "b", "c"), "y", "t"), np.full(1000, 5.0)).holdout_rows == 0  # no span
    from fraudops_bank import model as lr

    scaler = lr.scaler_from(lr.sufficient_statistics(x))
    got = engine.evaluate(lr.initial(3), scaler)
    assert got["loss"] == pytest.approx(np.log(2)) and got["auc"] == pytest.approx(0.5)
