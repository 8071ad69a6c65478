"""The option objects refuse bad values with an InvalidInputError naming the field."""

from __future__ import annotations

import pytest

from vecml_async import InvalidInputError, PollPolicy, RateLimitPolicy, RetryPolicy


@pytest.mark.parametrize(
    ("policy", "options"),
    [
        (RateLimitPolicy, {"calls_per_second": 0}),
        (RateLimitPolicy, {"calls_per_second": -1.0}),
        (RateLimitPolicy, {"calls_per_second": "10"}),
        (RateLimitPolicy, {"min_calls_per_second": 0}),
        (RateLimitPolicy, {"decrease_factor": 1.0}),
        (RateLimitPolicy, {"decrease_factor": 0}),
        (RateLimitPolicy, {"recovery_per_second": -0.1}),
        (RateLimitPolicy, {"decrease_interval": float("nan")}),
        (PollPolicy, {"initial_interval": -1}),
        (PollPolicy, {"max_interval": True}),
        (PollPolicy, {"upload_timeout": float("inf")}),
        (RetryPolicy, {"deadline": 0}),
        (RetryPolicy, {"rate_limit_deadline": -1}),
    ],
)
def test_policies_refuse_bad_values(policy, options):
    """A bad value is an InvalidInputError (also a ValueError) naming the field and policy."""
    with pytest.raises(InvalidInputError) as info:
        policy(**options)
    field = next(iter(options))
    assert info.value.field == field
    assert f"{policy.__name__}.{field}" in info.value.message
    assert isinstance(info.value, ValueError)


def test_optional_values_accept_none():
    """None means 'no limit' where a policy documents it."""
    assert RateLimitPolicy(calls_per_second=None).calls_per_second is None
    policy = RetryPolicy(deadline=None, rate_limit_deadline=None)
    assert (policy.deadline, policy.rate_limit_deadline) == (None, None)


def test_the_default_waits_are_bounded():
    """The documented bounds of the defaults: 5 x 30 s on real failures, 300 s of rate limits."""
    policy = RetryPolicy()
    assert policy.max_retries * max(policy.max_delay, policy.max_retry_after) == 150.0
    assert policy.rate_limit_deadline == 300.0
    assert policy.deadline is None
