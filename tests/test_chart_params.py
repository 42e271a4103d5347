"""Parameter validation of the charting estimators (scikit-learn's standard, docs/chart.md).

Bad values are drawn per declared constraint from this file's own description of what each
constraint kind forbids; every one must be refused with an :class:`InputError` naming the parameter,
by :func:`get_method`, by ``set_params`` and, when assigned directly, at ``chart()``.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import Interval, StrOptions

from modelatlas.chart.estimator import SubsetOf, get_method, method_names
from modelatlas.chart.synthetic import synthetic_zoo
from modelatlas.errors import InputError

METHODS = method_names()


def _outside(interval: Interval) -> st.SearchStrategy:
    """Numbers outside ``interval`` and values of the wrong type."""
    lo, hi = interval.left, interval.right
    integral = interval.type is Integral
    number = st.integers if integral else st.floats
    parts = [st.text(max_size=5), st.lists(st.integers(), max_size=2)]
    if lo is not None:
        below = number(max_value=lo - 1) if integral else number(max_value=lo, allow_nan=False)
        if not integral and interval.closed in ("left", "both"):
            below = below.filter(lambda v: v < lo)
        parts.append(below)
    if hi is not None:
        above = number(min_value=hi + 1) if integral else number(min_value=hi, allow_nan=False)
        if not integral and interval.closed in ("right", "both"):
            above = above.filter(lambda v: v > hi)
        parts.append(above)
    if integral:  # an int parameter refuses a float, even a whole one
        parts.append(st.floats(allow_nan=False, allow_infinity=False))
    else:  # NaN is in no interval; infinity is outside every bounded or open-ended-at-infinity one
        parts.append(st.just(math.nan))
    return st.one_of(parts)


def _bad_values(constraints: list) -> st.SearchStrategy:
    """Values that break the parameter's first constraint (the others are None or a type)."""
    first = constraints[0]
    if isinstance(first, Interval):
        return _outside(first)
    if isinstance(first, StrOptions):
        return st.one_of(st.text(max_size=12).filter(lambda s: s not in first.options), st.integers())
    if first == "boolean":
        return st.one_of(st.integers(), st.text(max_size=5), st.none())
    if isinstance(first, SubsetOf):
        return st.one_of(st.text(min_size=1, max_size=8),
                         st.lists(st.text(max_size=8).filter(lambda s: s not in first.options), min_size=1,
                                  max_size=3))
    if isinstance(first, type):  # an instance of a type (or None, the second constraint)
        return st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))
    raise AssertionError(f"no bad-value strategy for {first!r}")


CASES = [(name, param, constraints) for name in METHODS
         for param, constraints in type(get_method(name))._parameter_constraints.items()]


def test_every_parameter_is_declared():
    for name in METHODS:
        method = get_method(name)
        assert set(type(method)._parameter_constraints) == set(method.get_params()), name
        method._validate_params()  # the defaults satisfy their own constraints


@pytest.mark.parametrize(("name", "param", "constraints"), CASES, ids=[f"{n}-{p}" for n, p, _ in CASES])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_bad_values_are_refused_naming_the_parameter(name, param, constraints, data):
    value = data.draw(_bad_values(constraints))
    if param == "random_state" and isinstance(value, bool):
        value = -1  # bool is an int to Python and to scikit-learn's Interval
    with pytest.raises(InputError, match=f"'{param}' parameter of charting method '{name}'"):
        get_method(name, **{param: value})
    method = get_method(name)
    with pytest.raises(InputError, match=f"'{param}'"):
        method.set_params(**{param: value})
    assert getattr(method, param) == getattr(get_method(name), param)  # left unchanged


@pytest.mark.parametrize(("name", "params"), [("atlas", {"K": -3}), ("mother", {"distance": "bogus"}),
                                              ("auto", {"rules": ("known", "bogus")})])
def test_directly_assigned_bad_value_is_refused_at_chart(name, params):
    zoo = synthetic_zoo(12, n_components=1, seed=0)
    method = get_method(name)
    for key, value in params.items():
        setattr(method, key, value)  # bypasses set_params, as scikit-learn allows
    with pytest.raises(InputError, match=f"'{next(iter(params))}'"):
        method.chart(zoo.models)


def test_examples_from_the_issue():
    with pytest.raises(InputError, match=r"'K' parameter .* must be an int in the range \[1, inf\). Got -3"):
        get_method("atlas", K=-3)
    with pytest.raises(InputError, match=r"'distance' parameter .* must be a str among .*Got 'bogus'"):
        get_method("mother", distance="bogus")
    with pytest.raises(InputError, match="has no parameter 'bogus'"):
        get_method("atlas", bogus=1)


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 50), pct=st.floats(0, 100), seed=st.integers(0, 2**32))
def test_valid_values_are_accepted(k, pct, seed):
    method = get_method("atlas", K=k, rho_percentile=pct)
    assert (method.K, method.rho_percentile) == (k, pct)
    assert get_method("random", random_state=seed).random_state == seed
    assert get_method("random", random_state=np.random.default_rng(seed)) is not None
    assert get_method("auto", rules=("known", "merges")).rules == ("known", "merges")
