"""A file at a URL read through shared blocks: every read, seek and eviction against the bytes themselves."""

from __future__ import annotations

import io
import random
import threading

import pytest

from imgstore.io.rangefile import RangeFile, SharedBlocks


class Counted:
    """The file's bytes, served as range requests that are counted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list = []

    def __call__(self, start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(self.data), (start, end)
        self.requests.append((start, end))
        return self.data[start:end]


@pytest.mark.parametrize("size", [1, 99, 100, 101, 1234])
def test_random_reads_and_seeks_give_the_files_bytes(size: int) -> None:
    data = random.Random(size).randbytes(size)
    fetch = Counted(data)
    blocks = SharedBlocks(fetch, size, block_size=100, max_blocks=3)
    files = [RangeFile(blocks, "f"), RangeFile(blocks, "f")]  # two openings, each its own position
    rng = random.Random(1)
    positions = [0, 0]
    for _ in range(500):
        k = rng.randrange(2)
        f = files[k]
        if rng.random() < 0.3:
            whence = rng.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
            offset = rng.randrange(-size, size + 50)
            base = {io.SEEK_SET: 0, io.SEEK_CUR: positions[k], io.SEEK_END: size}[whence]
            if base + offset < 0:
                with pytest.raises(ValueError):
                    f.seek(offset, whence)
                continue
            positions[k] = f.seek(offset, whence)
        n = rng.choice([-1, 0, 1, 7, 99, 100, 101, 250, 1000])
        if rng.random() < 0.5:
            got = f.read(n)
        else:
            n = max(n, 0)
            buffer = bytearray(n)
            got = bytes(buffer[: f.readinto(buffer)])
        want = data[positions[k] :] if n < 0 else data[positions[k] : positions[k] + max(n, 0)]
        assert got == want
        positions[k] += len(got)
        assert f.tell() == positions[k]
    assert len(blocks._blocks) <= 3  # never more blocks kept than allowed


def test_blocks_are_fetched_once_and_missing_runs_in_one_request() -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    fetch = Counted(data)
    blocks = SharedBlocks(fetch, len(data), block_size=1024, max_blocks=16)
    assert RangeFile(blocks, "f").read() == data
    assert fetch.requests == [(0, len(data))]  # all ten blocks in one request
    again = RangeFile(blocks, "f")
    again.seek(5000)
    assert again.read(3000) == data[5000:8000]
    assert len(fetch.requests) == 1  # another opening: nothing fetched again


def test_threads_share_the_blocks() -> None:
    data = random.Random(3).randbytes(50_000)
    blocks = SharedBlocks(Counted(data), len(data), block_size=512, max_blocks=8)
    errors = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        f = RangeFile(blocks, "f")
        for _ in range(300):
            at = rng.randrange(len(data))
            f.seek(at)
            if f.read(700) != data[at : at + 700]:
                errors.append(at)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_short_answer_is_an_error_not_short_data() -> None:
    blocks = SharedBlocks(lambda start, end: b"x" * (end - start - 1), 1000, block_size=100, max_blocks=4)
    with pytest.raises(OSError, match="the server sent 99 bytes"):
        RangeFile(blocks, "f").read(10)
