"""Drift from histograms and precomputed values (docs/evaluation.md)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.api.models import DriftResult, SnapshotDrift
from modelreg.core.drift import compute_drift, js, kl, psi, shares

PROPS = settings(max_examples=200, deadline=None)
#: for narrower properties
QUICK = settings(max_examples=100, deadline=None)
METRICS = ("klDivergence", "psi", "jsDivergence")


def drift(**fields: Any) -> SnapshotDrift:
    return SnapshotDrift.model_validate(fields)


def feature(name: str, reference: list[float], current: list[float]) -> dict[str, Any]:
    return {"name": name, "reference": reference, "current": current}


# Independent reference implementation, written out with math.log.
def ref_shares(counts: list[float]) -> list[float]:
    total = sum(counts)
    s = [c / total for c in counts]
    s = [x if x > 0 else 1e-4 for x in s]
    norm = sum(s)
    return [x / norm for x in s]


def ref_kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def ref_psi(p: list[float], q: list[float]) -> float:
    return sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True))


def ref_js(p: list[float], q: list[float]) -> float:
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    return 0.5 * ref_kl(p, m) + 0.5 * ref_kl(q, m)


# --------------------------------------------------------------------------- helpers


def test_shares_normalise_and_fill_empty_bins() -> None:
    assert shares([1, 1, 2]) == pytest.approx([0.25, 0.25, 0.5])
    got = shares([10, 0, 30])
    assert got == pytest.approx([0.25 / 1.0001, 1e-4 / 1.0001, 0.75 / 1.0001])
    assert math.fsum(got) == pytest.approx(1.0)
    assert shares([7]) == [1.0]
    # huge counts do not overflow
    assert shares([1e308, 1e308]) == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("counts", [[], [0, 0], [1, float("inf")], [1, float("nan")], [-1, 2]])
def test_shares_reject_unusable_counts(counts: list[float]) -> None:
    with pytest.raises(ValueError):
        shares(counts)


def test_hand_computed_small_histogram() -> None:
    reference, current = [10, 0, 30], [20, 20, 0]
    # shares by hand: empty bins get 1e-4, then renormalise by 1.0001
    p = [0.25 / 1.0001, 1e-4 / 1.0001, 0.75 / 1.0001]
    q = [0.5 / 1.0001, 0.5 / 1.0001, 1e-4 / 1.0001]
    expected_kl = p[0] * math.log(p[0] / q[0]) + p[1] * math.log(p[1] / q[1]) + p[2] * math.log(p[2] / q[2])
    expected_psi = (
        (p[0] - q[0]) * math.log(p[0] / q[0])
        + (p[1] - q[1]) * math.log(p[1] / q[1])
        + (p[2] - q[2]) * math.log(p[2] / q[2])
    )
    m = [(p[i] + q[i]) / 2 for i in range(3)]
    expected_js = 0.5 * sum(p[i] * math.log(p[i] / m[i]) for i in range(3)) + 0.5 * sum(
        q[i] * math.log(q[i] / m[i]) for i in range(3)
    )
    # sanity: the numbers are what a by-hand computation gives
    assert expected_kl == pytest.approx(6.5172, abs=1e-4)
    assert expected_psi == pytest.approx(11.1210, abs=1e-4)
    assert expected_js == pytest.approx(0.4535, abs=1e-4)

    ps, qs = shares(reference), shares(current)
    assert kl(ps, qs) == pytest.approx(expected_kl, rel=1e-12)
    assert psi(ps, qs) == pytest.approx(expected_psi, rel=1e-12)
    assert js(ps, qs) == pytest.approx(expected_js, rel=1e-12)

    out = compute_drift(drift(features=[feature("amount", reference, current)]), "klDivergence")
    assert out.inconclusive_reason is None
    r = out.result
    assert r is not None
    assert r.metric == "klDivergence"
    assert r.value == pytest.approx(expected_kl, rel=1e-12)
    assert r.kl_divergence == pytest.approx(expected_kl, rel=1e-12)
    assert r.psi == pytest.approx(expected_psi, rel=1e-12)
    assert r.js_divergence == pytest.approx(expected_js, rel=1e-12)
    assert r.features is not None and [f.name for f in r.features] == ["amount"]


def test_spec_example_histogram() -> None:
    ref, cur = [120, 340, 90], [80, 300, 170]
    p, q = ref_shares(ref), ref_shares(cur)
    out = compute_drift(drift(klDivergence=0.3004, features=[feature("amount", ref, cur)]), "klDivergence")
    r = out.result
    assert r is not None
    # the histogram wins over the precomputed 0.3004
    assert r.value == pytest.approx(ref_kl(p, q), rel=1e-12)
    assert r.value == pytest.approx(0.061768, abs=1e-6)
    assert r.psi == pytest.approx(ref_psi(p, q), rel=1e-12)
    assert r.js_divergence == pytest.approx(ref_js(p, q), rel=1e-12)
    assert r.method == (
        "histograms: 1 feature, shares with empty bins set to 1e-4 and renormalised, natural log; "
        "value = max over features"
    )


def test_kl_is_reference_given_current() -> None:
    p, q = [0.9, 0.1], [0.5, 0.5]
    assert kl(p, q) == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2))
    assert kl(p, q) != pytest.approx(kl(q, p))
    assert psi(p, q) == pytest.approx(psi(q, p))
    assert js(p, q) == pytest.approx(js(q, p))
    assert js([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.log(2))


def test_helpers_reject_length_mismatch() -> None:
    for f in (kl, psi, js):
        with pytest.raises(ValueError):
            f([0.5, 0.5], [1.0])


@pytest.mark.parametrize("metric", METRICS)
def test_value_is_max_over_features_of_the_named_measure(metric: str) -> None:
    features = [
        feature("a", [10, 10, 10], [10, 10, 12]),
        feature("b", [100, 1, 1], [1, 1, 100]),
        feature("c", [5, 5], [5, 5]),
    ]
    out = compute_drift(drift(features=features), metric)  # type: ignore[arg-type]
    r = out.result
    assert r is not None and r.features is not None
    per = {
        f["name"]: {
            "klDivergence": ref_kl(ref_shares(f["reference"]), ref_shares(f["current"])),
            "psi": ref_psi(ref_shares(f["reference"]), ref_shares(f["current"])),
            "jsDivergence": ref_js(ref_shares(f["reference"]), ref_shares(f["current"])),
        }
        for f in features
    }
    assert r.metric == metric
    assert r.value == pytest.approx(max(v[metric] for v in per.values()), rel=1e-12)
    assert r.kl_divergence == pytest.approx(per["b"]["klDivergence"], rel=1e-12)
    assert r.psi == pytest.approx(per["b"]["psi"], rel=1e-12)
    assert r.js_divergence == pytest.approx(per["b"]["jsDivergence"], rel=1e-12)
    assert [f.name for f in r.features] == ["a", "b", "c"]
    assert r.features[2].kl_divergence == 0.0
    assert r.method is not None and r.method.startswith("histograms: 3 features")


# --------------------------------------------------------------------------- precomputed and missing


def test_precomputed_used_without_features() -> None:
    out = compute_drift(drift(klDivergence=0.3004, psi=0.2), "klDivergence")
    assert out.inconclusive_reason is None
    assert out.result == DriftResult(
        metric="klDivergence", value=0.3004, kl_divergence=0.3004, psi=0.2, method="precomputed klDivergence"
    )
    out = compute_drift(drift(klDivergence=0.3004, psi=0.2, features=[]), "psi")
    assert out.result is not None and out.result.value == 0.2 and out.result.method == "precomputed psi"


def test_missing_drift_metric_is_no_result_and_no_reason() -> None:
    assert compute_drift(None, "klDivergence").result is None
    assert compute_drift(drift(), "klDivergence").result is None
    out = compute_drift(drift(psi=0.1), "klDivergence")
    assert out.result is None and out.inconclusive_reason is None
    out = compute_drift(drift(jsDivergence=float("inf")), "jsDivergence")
    assert out.result is None and out.inconclusive_reason is None


def test_all_zero_histograms_are_inconclusive_naming_the_features() -> None:
    out = compute_drift(
        drift(
            klDivergence=0.01,
            features=[feature("amount", [0, 0, 0], [1, 2, 3]), feature("country", [1, 2], [0, 0])],
        ),
        "klDivergence",
    )
    assert out.inconclusive_reason is not None
    assert "amount" in out.inconclusive_reason and "country" in out.inconclusive_reason
    assert "all-zero reference" in out.inconclusive_reason
    assert "all-zero current" in out.inconclusive_reason
    assert out.result is not None and out.result.value is None
    assert out.result.method is not None and "none measurable" in out.result.method


def test_unmeasurable_features_are_skipped_and_named() -> None:
    out = compute_drift(
        drift(
            features=[
                feature("amount", [120, 340, 90], [80, 300, 170]),
                feature("empty", [0, 0], [0, 0]),
                feature("ragged", [1, 2, 3], [1, 2]),
                feature("infinite", [1, float("inf")], [1, 1]),
            ]
        ),
        "psi",
    )
    assert out.inconclusive_reason is None
    r = out.result
    assert r is not None and r.features is not None
    assert [f.name for f in r.features] == ["amount"]
    assert r.value == pytest.approx(0.131099, abs=1e-6)
    assert r.method is not None
    assert "histograms: 1 feature," in r.method
    assert "skipped 3 features" in r.method
    for name in ("empty", "ragged", "infinite"):
        assert name in r.method


def test_extreme_counts_stay_finite() -> None:
    out = compute_drift(drift(features=[feature("x", [1e308, 5e-324, 0], [5e-324, 1e308, 1e308])]), "klDivergence")
    r = out.result
    assert r is not None
    for v in (r.value, r.kl_divergence, r.psi, r.js_divergence):
        assert v is not None and math.isfinite(v) and v >= 0


# --------------------------------------------------------------------------- properties

_counts = st.one_of(
    st.just(0.0),
    st.integers(0, 10**6).map(float),
    st.floats(min_value=0, allow_infinity=True),
    st.sampled_from([5e-324, 1e-300, 1e308, 1.0]),
)


@st.composite
def histograms(draw: st.DrawFn) -> dict[str, Any]:
    bins = draw(st.integers(1, 8))
    ref = draw(st.lists(_counts, min_size=bins, max_size=bins))
    same = draw(st.booleans())
    cur = ref if same else draw(st.lists(_counts, min_size=1, max_size=8))
    return feature(draw(st.sampled_from(["a", "b", "amount", "ü"])), ref, cur)


SNAPSHOT_DRIFTS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "klDivergence": st.floats(min_value=0, allow_infinity=True),
            "psi": st.floats(min_value=0, allow_infinity=True),
            "jsDivergence": st.floats(min_value=0, allow_infinity=True),
            "features": st.lists(histograms(), max_size=5),
        },
    ).map(SnapshotDrift.model_validate),
)


@PROPS
@given(SNAPSHOT_DRIFTS, st.sampled_from(METRICS))
def test_compute_drift_never_raises_and_is_consistent(sd: SnapshotDrift | None, metric: str) -> None:
    out = compute_drift(sd, metric)  # type: ignore[arg-type]
    r = out.result
    if out.inconclusive_reason is not None:
        assert r is not None and r.value is None
    if r is None:
        return
    # the result is a valid API object
    DriftResult.model_validate(r.model_dump())
    assert r.metric == metric
    for v in (r.value, r.kl_divergence, r.psi, r.js_divergence):
        assert v is None or (math.isfinite(v) and v >= 0)
    by_name = {"klDivergence": r.kl_divergence, "psi": r.psi, "jsDivergence": r.js_divergence}
    if r.value is not None:
        assert r.value == by_name[metric]
    for f in r.features or []:
        for v in (f.kl_divergence, f.psi, f.js_divergence):
            assert v is not None and math.isfinite(v) and v >= 0


@QUICK
@given(st.lists(_counts, min_size=1, max_size=20).filter(lambda c: any(0 < x < math.inf for x in c)))
def test_divergence_of_a_distribution_from_itself_is_zero(counts: list[float]) -> None:
    if not all(math.isfinite(c) for c in counts):
        return
    p = shares(counts)
    assert math.fsum(p) == pytest.approx(1.0)
    assert all(x > 0 for x in p)
    assert kl(p, p) == 0.0
    assert psi(p, p) == 0.0
    assert js(p, p) == 0.0


@QUICK
@given(
    st.integers(1, 10).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(min_value=0, max_value=1e12), min_size=n, max_size=n),
            st.lists(st.floats(min_value=0, max_value=1e12), min_size=n, max_size=n),
        )
    )
)
def test_divergences_are_non_negative_and_js_bounded(pair: tuple[list[float], list[float]]) -> None:
    a, b = pair
    if not any(a) or not any(b):
        return
    p, q = shares(a), shares(b)
    assert kl(p, q) >= 0
    assert psi(p, q) >= 0
    assert 0 <= js(p, q) <= math.log(2) + 1e-12
    assert psi(p, q) == pytest.approx(kl(p, q) + kl(q, p), rel=1e-9, abs=1e-12)
