"""The feed between the reader and the senders: the bytes it holds (its own accounting,
checked against the chunks), the memory bound, the read-ahead, and rows put back."""

from __future__ import annotations

import anyio
import numpy as np

from vecml_async._ingest.batching import Batch, Batcher, Envelope
from vecml_async._ingest.chunks import RawChunk
from vecml_async._ingest.encoder import ChunkEncoder
from vecml_async._ingest.encoding import EncodedRows
from vecml_async._ingest.feed import Feed

ENVELOPE = Envelope.create("vml_feed-key", "p", "c")


def chunks(count: int, rows: int = 100, dim: int = 16) -> list[EncodedRows]:
    encoder = ChunkEncoder("id-", dim=dim)
    data = np.random.default_rng(0).standard_normal((count * rows, dim)).astype(np.float32)
    return [
        encoder.encode(RawChunk(k * rows, data[k * rows : (k + 1) * rows])) for k in range(count)
    ]


def feed_of(limit: int, target: int) -> Feed:
    batcher = Batcher(ENVELOPE, max_rows=10**6, max_bytes=10**8)
    return Feed(batcher, limit, lambda: target)


async def test_held_bytes_are_the_chunks_not_yet_done() -> None:
    """Bytes come in with each chunk and go once every row of it is done, not before, even
    when its rows were cut into several batches."""
    parts = chunks(2)
    size = parts[0].nbytes
    total = sum(p.nbytes for p in parts)
    feed = feed_of(10 * size, 4 * size)
    for part in parts:
        await feed.put(part)
    assert feed.held == total
    batches: list[Batch] = []
    while not batches or batches[-1].segments[-1].chunk is parts[0]:
        batch = feed.cut(size // 3)
        assert batch is not None
        batches.append(batch)
    assert feed.in_flight == len(batches) >= 3
    for batch in batches[:-1]:
        feed.done(batch)
        assert feed.held == total  # rows of the first chunk are still in flight
    feed.done(batches[-1])  # it holds the first chunk's last rows
    assert feed.held == parts[1].nbytes and feed.in_flight == 0


async def test_the_reader_waits_for_memory_while_batches_are_in_flight() -> None:
    """A chunk that would take the held bytes past the limit waits until a batch is done;
    the held bytes never pass the limit."""
    parts = chunks(4)
    size = parts[0].nbytes
    feed = feed_of(2 * max(p.nbytes for p in parts) + 100, 10 * size)
    await feed.put(parts[0])
    await feed.put(parts[1])
    batch = feed.cut(size + 500)  # every row of the first chunk, and a few more
    assert batch is not None
    done = False

    async def reader() -> None:
        nonlocal done
        await feed.put(parts[2])
        done = True

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        assert not done and feed.held <= feed.limit
        feed.done(batch)
    assert done and feed.peak <= feed.limit


async def test_with_nothing_in_flight_a_chunk_over_the_limit_is_still_taken() -> None:
    """No batch will give bytes back: waiting would never end, so the chunk goes in."""
    parts = chunks(2)
    feed = feed_of(parts[0].nbytes // 2, parts[0].nbytes * 4)
    await feed.put(parts[0])
    assert feed.held == parts[0].nbytes


async def test_the_reader_reads_ahead_two_targets_at_most() -> None:
    """Once the queued rows make two full batches at the target, the reader waits before
    reading on; a cut makes room."""
    parts = chunks(1, rows=400)
    target = parts[0].nbytes // 3
    feed = feed_of(100 * target, target)
    await feed.put(parts[0])
    waited = False

    async def reader() -> None:
        nonlocal waited
        await feed.wait_for_room()
        waited = True

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        assert not waited
        feed.cut(2 * target)
    assert waited


async def test_rows_put_back_are_cut_first_and_stay_held() -> None:
    """A batch refused as too large goes back to the front: the next batch, smaller, starts
    with its first row, and its bytes stay counted."""
    parts = chunks(3)
    target = parts[0].nbytes
    feed = feed_of(100 * target, 10 * target)
    for part in parts:
        await feed.put(part)
    batch = feed.cut(2 * target)
    assert batch is not None
    held = feed.held
    feed.requeue(batch)
    assert feed.in_flight == 0 and feed.held == held
    smaller = feed.cut(target // 3)
    assert smaller is not None and smaller.first_row == batch.first_row
    assert smaller.full and smaller.length <= target // 3


async def test_wait_ready_says_when_nothing_is_left() -> None:
    """Ready once a full batch is queued, or the last rows once closed; None when empty."""
    parts = chunks(1)
    feed = feed_of(10**8, 10 * parts[0].nbytes)
    await feed.put(parts[0])
    with anyio.move_on_after(0) as scope:
        await feed.wait_ready()
    assert scope.cancelled_caught  # not full, and more may come
    feed.close()
    assert await feed.wait_ready() == 10 * parts[0].nbytes
    last = feed.cut(10 * parts[0].nbytes)
    assert last is not None and not last.full
    assert await feed.wait_ready() is None


async def test_a_sender_waiting_for_a_full_batch_follows_a_smaller_target() -> None:
    """A sender waits for a full batch at a large target; a call that ends meanwhile
    shrinks the target, and the reader (reading ahead by the new target) stops: the sender
    is ready at the new target instead of waiting for rows that will not be read."""
    parts = chunks(6)
    size = parts[0].nbytes
    target = [10 * size]
    batcher = Batcher(ENVELOPE, max_rows=10**6, max_bytes=10**8)
    feed = Feed(batcher, 10**8, lambda: target[0])
    for part in parts[:2]:
        await feed.put(part)
    in_flight = feed.cut(size // 2)
    assert in_flight is not None
    got: list[int | None] = []

    async def sender() -> None:
        got.append(await feed.wait_ready())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(sender)
            await anyio.wait_all_tasks_blocked()
            assert not got  # under 10 chunks queued: not full at the large target
            target[0] = size // 2  # the call in flight ended and moved the target
            feed.done(in_flight)
    assert got == [size // 2]
    assert not feed._room(0)  # read far enough ahead for the new target
