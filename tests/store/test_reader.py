"""The store's reader keeps a few chunk readers open: every frame still exact, wherever reads go.

Random reads that go back and forth between chunks reuse each chunk's open reader (and its
decoder's position); reading on in order closes the chunk it leaves. Frames are checked
against a sequential read, bit for bit, and by the frame code drawn in each.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

import imgstore
from imgstore.store import reader as store_reader
from imgstore.store.view import StoreView

from framecodes import decode_grid, make_grid_frame

SHAPE = (96, 128)
CHUNK = 30
CHUNKS = 5
CODE = 64
T0 = 1_600_000_000.0


def _frame(i: int) -> np.ndarray:
    img = np.random.default_rng(i).integers(0, 256, SHAPE, dtype=np.uint8)
    img[:CODE, :CODE] = make_grid_frame(i, (CODE, CODE), noise=False)
    return img


def _foreign_chunk(path, start: int) -> None:
    """libx264 as other programs run it: frame threads, B-frames, limited-range yuv420p, GOP 12."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "12"})
        stream.height, stream.width = SHAPE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_type = "FRAME"
        for i in range(CHUNK):
            frame = av.VideoFrame.from_ndarray(_frame(start + i), format="gray")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(params=["ours, full range", "libx264 defaults, limited range, B-frames"])
def store_path(request, tmp_path):
    path = str(tmp_path / "store")
    if request.param.startswith("ours"):
        store = imgstore.new_for_format("avc1/mp4", path=path, imgshape=SHAPE, chunksize=CHUNK, gop=12)
        for i in range(CHUNK * CHUNKS):
            store.add_image(_frame(i), i, T0 + i / 25)
    else:
        store = imgstore.new_for_format("avc1/mp4", path=path, imgshape=SHAPE, chunksize=CHUNK)
        for n in range(CHUNKS):
            clip = tmp_path / f"clip{n}.mp4"
            _foreign_chunk(clip, n * CHUNK)
            numbers = np.arange(n * CHUNK, (n + 1) * CHUNK)
            store.insert_chunk(str(clip), numbers, T0 + numbers / 25, move=False)
    store.close()
    return path


class OpenChunks:
    """Which chunk readers the store has open, in the order they were opened, and which it closed."""

    def __init__(self, monkeypatch) -> None:
        self.open, self.closed = [], []
        open_chunk = StoreView.open_chunk

        def spied(view, chunk_n):
            reader = open_chunk(view, chunk_n)
            close = reader.close

            def closing():
                self.open.remove(chunk_n)
                self.closed.append(chunk_n)
                close()

            reader.close = closing
            self.open.append(chunk_n)
            return reader

        monkeypatch.setattr(StoreView, "open_chunk", spied)


def test_random_reads_back_and_forth_between_chunks_are_exact(store_path, monkeypatch):
    chunks = OpenChunks(monkeypatch)
    store = imgstore.new_for_filename(store_path)
    expected = []
    for i in range(CHUNK * CHUNKS):
        img, (number, _) = store.get_next_image()
        assert number == i and decode_grid(img[:CODE, :CODE]) == i
        expected.append(img)
        assert chunks.open == [i // CHUNK]  # reading in order closes the chunk it leaves
    order = [5, 70, 6, 140, 71, 29, 40, 7, 150 - 1, 100, 8, 9, 72, 0, 139, 35, 64, 4, 130, 71, 72, 73]
    for i in order:
        img, (number, _) = store.get_image(None, frame_index=i)
        assert number == i
        np.testing.assert_array_equal(img, expected[i], err_msg=f"frame {i} read at random")
        assert len(chunks.open) <= store_reader.OPEN_CHUNKS and i // CHUNK in chunks.open
    # reading on in order from a random read goes on exactly, across the chunk's end
    store.get_image(None, frame_index=CHUNK - 3)
    for i in range(CHUNK - 2, CHUNK + 3):
        img, (number, _) = store.get_next_image()
        assert number == i
        np.testing.assert_array_equal(img, expected[i], err_msg=f"frame {i} read on after a random read")
    store.close()


def test_least_recently_used_chunk_reader_is_closed_first(store_path, monkeypatch):
    chunks = OpenChunks(monkeypatch)
    store = imgstore.new_for_filename(store_path)
    for chunk in (0, 1, 2):
        store.get_image(None, frame_index=chunk * CHUNK + 5)
    assert chunks.open == [0, 1, 2] and chunks.closed == []
    store.get_image(None, frame_index=5)  # chunk 0 used again: chunk 1 is now the oldest
    store.get_image(None, frame_index=3 * CHUNK + 5)
    assert chunks.closed == [1] and sorted(chunks.open) == [0, 2, 3]
    img, (number, _) = store.get_image(None, frame_index=2 * CHUNK + 7)  # still open, decodes on
    assert number == 2 * CHUNK + 7 and decode_grid(img[:CODE, :CODE]) == number
    assert chunks.closed == [1]
    store.close()
    assert chunks.open == [] and sorted(chunks.closed) == [0, 1, 2, 3]
    img, (number, _) = store.get_image(None, frame_index=CHUNK + 1)  # the store stays readable
    assert number == CHUNK + 1 and decode_grid(img[:CODE, :CODE]) == number and chunks.open == [1]
