"""Job futures: await, wait with a deadline, refresh, rebuild from an id, cancellation."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import vecml_async
from vecml_async import (
    AsyncVecML,
    ClassificationMetrics,
    InvalidInputError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PollPolicy,
    TrainingJob,
    TrainingStatus,
    UploadJob,
    UploadStatus,
)

METRICS = {
    "accuracy": 0.75,
    "micro_precision": 0.7,
    "macro_precision": 0.7,
    "micro_recall": 0.7,
    "macro_recall": 0.7,
    "micro_f1": 0.7,
    "macro_f1": 0.7,
    "auc": 0.8,
}


def status(state: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "status": state, **fields})


# ----------------------------------------------------------------------------- outcomes


async def test_upload_job_polls_until_finished(client, mock, api_key):
    """pending -> in_progress -> finished: await returns the final typed status."""
    route = mock.post("/get_upload_data_status").mock(
        side_effect=[status("pending"), status("in_progress"), status("finished", num_rows=5)]
    )
    job = client.upload_job("up-1")
    final = await job
    assert isinstance(final, UploadStatus)
    assert final.status == "finished"
    assert final.model_extra == {"num_rows": 5}
    assert route.call_count == 3
    assert all(c.request.content == route.calls[0].request.content for c in route.calls)
    assert job.done
    assert job.last_status is final


async def test_training_job_returns_validation_metric(client, mock):
    """A training job's final status carries the validation metric."""
    mock.post("/train_automl_model").respond(json={"success": True, "job_id": "t-1"})
    route = mock.post("/get_automl_training_status").mock(
        side_effect=[
            status("pending", task_type="classification", model_name="m"),
            status("in_progress", task_type="classification", model_name="m"),
            status("finished", task_type="classification", validation_metric=METRICS),
        ]
    )
    job = await client.train_automl_model(
        "p", "c", "m", task_type="classification", label_attribute="label"
    )
    assert isinstance(job, TrainingJob)
    final = await job.wait(timeout=10)
    assert isinstance(final, TrainingStatus)
    assert isinstance(final.validation_metric, ClassificationMetrics)
    assert final.validation_metric.accuracy == 0.75
    assert route.call_count == 3


async def test_failed_job_raises_with_server_text(client, mock):
    """A failed job raises JobFailedError carrying the server's error text and the job id."""
    mock.post("/get_automl_training_status").mock(
        side_effect=[status("in_progress"), status("failed", error="Training failed: no labels")]
    )
    job = client.training_job("t-9")
    with pytest.raises(JobFailedError) as info:
        await job
    assert info.value.error == "Training failed: no labels"
    assert info.value.job_id == "t-9"
    assert info.value.status == "failed"
    assert "Training failed: no labels" in str(info.value)
    assert job.done


@pytest.mark.parametrize(
    ("fields", "text"),
    [({"error_message": "disk full"}, "disk full"), ({}, "no error text given")],
)
async def test_failed_job_error_text_fallbacks(client, mock, fields, text):
    """Without an 'error' field the failure text comes from error_message, else a default."""
    mock.post("/get_upload_data_status").mock(return_value=status("failed", **fields))
    with pytest.raises(JobFailedError) as info:
        await client.upload_job("u")
    assert info.value.error == text


async def test_wait_timeout(client, mock):
    """A job that stays in_progress past the deadline raises JobTimeoutError (a TimeoutError)."""
    route = mock.post("/get_upload_data_status").mock(return_value=status("in_progress"))
    job = client.upload_job("slow")
    with pytest.raises(TimeoutError) as info:
        await job.wait(timeout=0.05)
    err = info.value
    assert isinstance(err, JobTimeoutError)
    assert isinstance(err, JobError)
    assert (err.job_id, err.status, err.timeout) == ("slow", "in_progress", 0.05)
    assert route.call_count >= 1
    assert not job.done


async def test_default_deadline_from_poll_policy(api_key, base_url, http, mock):
    """await job uses the PollPolicy deadline of its kind."""
    mock.post("/get_upload_data_status").mock(return_value=status("pending"))
    mock.post("/get_automl_training_status").mock(return_value=status("pending"))
    poll = PollPolicy(upload_timeout=0.03, training_timeout=0.06)
    async with AsyncVecML(
        api_key, base_url=base_url, rate_limit=None, http_client=http, poll=poll
    ) as client:
        with pytest.raises(JobTimeoutError) as upload_info:
            await client.upload_job("u")
        with pytest.raises(JobTimeoutError) as training_info:
            await client.training_job("t")
    assert upload_info.value.timeout == 0.03
    assert training_info.value.timeout == 0.06
    assert upload_info.value.status == "pending"


async def test_wait_without_deadline(client, mock):
    """timeout=None waits for as long as it takes."""
    mock.post("/get_upload_data_status").mock(
        side_effect=[status("in_progress")] * 50 + [status("finished")]
    )
    assert (await client.upload_job("u").wait(timeout=None)).is_finished


async def test_status_errors_propagate(client, mock):
    """A refused status request (unknown job) raises its APIError from await."""
    mock.post("/get_upload_data_status").respond(
        404, json={"success": False, "error_message": "Job nope not found"}
    )
    with pytest.raises(NotFoundError, match="Job nope not found"):
        await client.upload_job("nope")


# ----------------------------------------------------------------------------- refresh, rebuild


async def test_refresh_polls_once(client, mock):
    """refresh() makes one status request and returns it; failed is returned, not raised."""
    route = mock.post("/get_upload_data_status").mock(
        side_effect=[status("in_progress"), status("failed", error="bad file")]
    )
    job = client.upload_job("u")
    first = await job.refresh()
    assert first.status == "in_progress"
    assert route.call_count == 1
    assert not job.done
    second = await job.refresh()
    assert second.is_failed
    assert second.error == "bad file"
    assert route.call_count == 2
    assert job.done


async def test_rebuild_from_id_polls_the_right_endpoint(client, mock, api_key):
    """upload_job(id) / training_job(id) rebuild handles that poll their endpoint with the id."""
    upload = mock.post("/get_upload_data_status").mock(return_value=status("finished"))
    training = mock.post("/get_automl_training_status").mock(
        return_value=status("finished", validation_metric=0.5)
    )
    job_u = client.upload_job("stored-upload-id")
    job_t = client.training_job("stored-train-id")
    assert isinstance(job_u, UploadJob)
    assert isinstance(job_t, TrainingJob)
    assert (await job_u).is_finished
    assert (await job_t).validation_metric == 0.5
    assert upload.calls.last.request.content == (
        b'{"user_api_key":"' + api_key.encode() + b'","job_id":"stored-upload-id"}'
    )
    assert b'"job_id":"stored-train-id"' in training.calls.last.request.content


@pytest.mark.parametrize("method", ["upload_job", "training_job"])
def test_rebuild_refuses_empty_id(method, api_key, base_url):
    """An empty job id is refused when the handle is built."""
    client = AsyncVecML(api_key, base_url=base_url)
    with pytest.raises(InvalidInputError) as info:
        getattr(client, method)("")
    assert info.value.field == "job_id"


async def test_await_twice(client, mock):
    """A job can be awaited again; each await polls afresh."""
    route = mock.post("/get_upload_data_status").mock(return_value=status("finished"))
    job = client.upload_job("u")
    assert (await job).is_finished
    assert (await job).is_finished
    assert route.call_count == 2


async def test_repr(client, mock):
    """The repr shows the kind, the id and the last status."""
    mock.post("/get_upload_data_status").mock(return_value=status("in_progress"))
    job = client.upload_job("u-1")
    assert repr(job) == "UploadJob(job_id='u-1', status=None)"
    await job.refresh()
    assert repr(job) == "UploadJob(job_id='u-1', status='in_progress')"


# ----------------------------------------------------------------------------- cancellation


@pytest.mark.parametrize("timeout", [None, 30.0])
async def test_cancel_stops_polling(client, mock, timeout):
    """Cancelling the awaiting task stops the polling at once and leaves no task behind."""
    polled = asyncio.Event()
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 3:
            polled.set()
        return status("in_progress")

    route = mock.post("/get_upload_data_status").mock(side_effect=answer)
    job = client.upload_job("u")
    task = asyncio.create_task(job.wait(timeout=timeout))
    await polled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after_cancel = route.call_count
    for _ in range(50):  # give any stray poller every chance to run
        await asyncio.sleep(0)
    assert route.call_count == after_cancel
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancel_during_wait_for_is_not_a_job_timeout(client, mock):
    """An outer deadline (asyncio.wait_for) cancels the wait; it is not a JobTimeoutError."""
    mock.post("/get_upload_data_status").mock(return_value=status("in_progress"))
    job = client.upload_job("u")
    with pytest.raises(TimeoutError) as info:
        await asyncio.wait_for(job.wait(timeout=30), timeout=0.02)
    assert not isinstance(info.value, JobTimeoutError)
    assert asyncio.all_tasks() == {asyncio.current_task()}


# ----------------------------------------------------------------------------- poll policy


@pytest.fixture
def delays_on() -> Iterator[None]:
    vecml_async.set_testing(False)
    try:
        yield
    finally:
        vecml_async.set_testing(True)


def test_poll_interval_grows_and_is_capped(delays_on):
    """Without jitter the poll interval grows by the multiplier up to max_interval."""
    policy = PollPolicy(initial_interval=0.25, multiplier=2.0, max_interval=1.0, jitter=0.0)
    rng = random.Random(0)
    assert [policy.interval(n, rng) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]


def test_poll_interval_jitter_within_bounds(delays_on):
    """With jitter j every interval lies in [(1 - j) * base, base]."""
    policy = PollPolicy(initial_interval=2.0, multiplier=1.0, max_interval=2.0, jitter=0.2)
    rng = random.Random(99)
    samples = [policy.interval(1, rng) for _ in range(300)]
    assert all(1.6 <= s <= 2.0 for s in samples)
    assert max(samples) - min(samples) > 0.2


def test_poll_interval_zero_in_testing_mode():
    """In testing mode polls do not wait."""
    assert PollPolicy().interval(10, random.Random(0)) == 0.0


async def test_polls_really_wait_outside_testing_mode(client, mock, delays_on):
    """Outside testing mode consecutive polls are separated by the policy's interval."""
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        stamps.append(loop.time())
        return status("finished" if len(stamps) == 3 else "pending")

    mock.post("/get_upload_data_status").mock(side_effect=answer)
    client.poll = PollPolicy(initial_interval=0.05, multiplier=1.0, jitter=0.0)
    await client.upload_job("u")
    assert len(stamps) == 3
    assert stamps[1] - stamps[0] >= 0.045
    assert stamps[2] - stamps[1] >= 0.045


@pytest.mark.parametrize(
    "options",
    [
        {"initial_interval": -1.0},
        {"max_interval": -1.0},
        {"multiplier": 0.9},
        {"jitter": -0.1},
        {"upload_timeout": 0},
        {"training_timeout": -5},
    ],
)
def test_poll_policy_refuses_nonsense(options):
    """PollPolicy refuses negative intervals, shrinking growth and non-positive deadlines,
    with an InvalidInputError naming the field."""
    with pytest.raises(InvalidInputError) as info:
        PollPolicy(**options)
    assert info.value.field == next(iter(options))


@pytest.mark.parametrize(
    ("final", "outcome"), [("FINISHED", "returns"), ("Failed", "raises"), ("fInIsHeD", "returns")]
)
async def test_status_spellings_are_compared_without_case(client, mock, final, outcome):
    """Undocumented spellings of the final statuses end the wait instead of polling on."""
    mock.post("/get_upload_data_status").mock(side_effect=[status("Pending"), status(final)])
    job = client.upload_job("j")
    if outcome == "returns":
        assert (await job.wait(timeout=5)).status == final
    else:
        with pytest.raises(JobFailedError):
            await job.wait(timeout=5)


async def test_unknown_status_is_logged_once_and_named_at_the_deadline(client, mock, caplog):
    """A status none of the four is logged once (however many polls), and the timeout error
    names it as unknown."""
    route = mock.post("/get_upload_data_status").mock(return_value=status("COMPLETE"))
    job = client.upload_job("j")
    with caplog.at_level("WARNING", logger="vecml_async"), pytest.raises(JobTimeoutError) as info:
        await job.wait(timeout=0.2)
    assert route.call_count > 3
    warnings = [r for r in caplog.records if "COMPLETE" in r.getMessage()]
    assert len(warnings) == 1
    assert info.value.status == "COMPLETE"
    assert info.value.known_status is False
    assert "COMPLETE (a status this client does not know)" in str(info.value)
