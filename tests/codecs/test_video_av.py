"""PyAV chunk writer/reader edge cases (the frame-exactness suite is tests/store/test_video.py)."""

from __future__ import annotations

import pytest

import imgstore
from imgstore.codecs.video_av import packet_index

from framecodes import decode_grid, make_grid_frame

VIDEO_FORMATS = imgstore.VideoImgStore.supported_formats()


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_very_short_chunks(tmp_path, fmt, count):
    """Chunks of one to three frames (a store's last chunk often is one): libx265 once gave such
    streams garbage decode timestamps that the mp4 muxer refused."""
    for attempt in range(3):  # the encoder fault was intermittent: try a few times
        path = tmp_path / f"s{attempt}"
        with imgstore.new_for_format(fmt, path=str(path), imgshape=(64, 64, 3), chunksize=count) as store:
            for i in range(count):
                store.add_image(make_grid_frame(i, (64, 64, 3), noise=False), i, float(i))
        reader = imgstore.new_for_filename(str(path))
        assert [decode_grid(reader.get_next_image()[0]) for _ in range(count)] == list(range(count))
        index = packet_index(reader.view.chunk_path(0))
        assert len(index.pts) == count and index.keyframes[0] == index.pts[0]
