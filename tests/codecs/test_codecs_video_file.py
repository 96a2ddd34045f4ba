"""``imgstore.codecs.video_file``: ordinary video files at a constant frame rate, and how
``imgstore-export`` words their failures.

Frames carry their own id (``framecodes``' grid), so a decoded file says which frames it holds.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path
from typing import List, Tuple

import av
import numpy as np
import pytest

from imgstore.apps import export
from imgstore.apps._cli import ToolError
from imgstore.codecs import video_file
from imgstore.codecs.video_file import VideoFileError, VideoFileWriter, video_file_format
from imgstore.errors import ImageShapeError, UnsupportedFormatError

from framecodes import decode_grid, make_grid_frame

SHAPE = (48, 64)


def decoded(path: Path) -> Tuple[List[int], str, str, Tuple[int, int], Fraction]:
    """Frame ids, codec, pixel format, (height, width) and frame rate of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ids = [decode_grid(frame.to_ndarray(format="bgr24")) for frame in container.decode(stream)]
        context = stream.codec_context
        return ids, context.name, context.pix_fmt, (stream.height, stream.width), stream.average_rate


def write(path: Path, frames: List[np.ndarray], fps: Fraction = Fraction(25), crf: int = 18) -> None:
    writer = VideoFileWriter(str(path), fps, crf)
    for frame in frames:
        writer.write(frame)
    writer.close()


@pytest.mark.parametrize(
    "name, codec, pix_fmt",
    [
        ("a.mp4", "h264", "yuv420p"),
        ("a.mkv", "h264", "yuv420p"),
        ("a.mov", "h264", "yuv420p"),
        ("a.AVI", "mjpeg", "yuvj420p"),
    ],
)
@pytest.mark.parametrize("shape", [SHAPE, (*SHAPE, 3), (*SHAPE, 1)], ids=["grey", "colour", "one-channel"])
def test_every_frame_in_order_at_the_given_rate(
    tmp_path: Path, name: str, codec: str, pix_fmt: str, shape: tuple
) -> None:
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    frames = [make_grid_frame(i, shape[:2] if shape[2:] == (1,) else shape).reshape(shape) for i in ids]
    write(tmp_path / name, frames, fps=Fraction(15, 2))
    assert decoded(tmp_path / name) == (ids, codec, pix_fmt, SHAPE, Fraction(15, 2))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no .part left


def test_sixteen_bit_frames_are_encoded(tmp_path: Path) -> None:
    frames = [make_grid_frame(i, SHAPE, np.uint16) for i in range(4)]
    write(tmp_path / "a.mkv", frames)
    assert decoded(tmp_path / "a.mkv")[0] == [0, 1, 2, 3]


def test_odd_sizes_lose_their_last_row_and_column(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sub" / "dir" / "odd.mp4"  # missing folders are made
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        write(path, [make_grid_frame(i, (49, 65, 3)) for i in range(3)])
    assert decoded(path)[0] == [0, 1, 2] and decoded(path)[3] == SHAPE
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 65x49 frames cropped to 64x48 (videos need even sizes)"
    ]


def test_frames_no_video_holds_are_refused_before_a_file_exists(tmp_path: Path) -> None:
    writer = VideoFileWriter(str(tmp_path / "a.mp4"), Fraction(25))
    for frame, words in (
        (np.zeros(SHAPE, np.float32), "cannot encode float32 frames of shape (48, 64) as video"),
        (np.zeros((*SHAPE, 2), np.uint8), "cannot encode uint8 frames of shape (48, 64, 2) as video"),
    ):
        with pytest.raises(
            UnsupportedFormatError, match=re.escape(f"{words} (uint8/uint16, grey or 3-channel colour)")
        ):
            writer.write(frame)
    with pytest.raises(ImageShapeError, match=r"frames of shape \(1, 64\) are too small for a video$"):
        writer.write(np.zeros((1, 64), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_frame_of_another_shape_is_refused_and_abort_leaves_nothing(tmp_path: Path) -> None:
    writer = VideoFileWriter(str(tmp_path / "a.avi"), Fraction(25))
    writer.write(make_grid_frame(0, SHAPE))
    assert [p.name for p in tmp_path.iterdir()] == ["a.avi.part"]
    with pytest.raises(ImageShapeError, match=r"frame shape changed from \(48, 64\) to \(48, 64, 3\)$"):
        writer.write(make_grid_frame(1, (*SHAPE, 3)))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_formats_by_extension() -> None:
    assert video_file_format("x/y.MP4") == video_file_format("y.mp4")
    assert video_file_format("y.mp4").takes_crf and not video_file_format("y.avi").takes_crf
    assert video_file_format("y.png") is None and video_file_format("y") is None
    with pytest.raises(UnsupportedFormatError, match="not a video file name"):
        VideoFileWriter("y.png", Fraction(25))


def test_export_words_the_writers_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "a.mp4")
    with pytest.raises(ToolError) as refused:
        export.write_video(path, Fraction(25), None, iter([np.zeros(SHAPE, np.float64)]))
    assert str(refused.value) == (
        f"{path}: cannot encode float64 frames of shape (48, 64) as video (uint8/uint16, grey or 3-channel colour); "
        "export an image sequence with --image-format npy"
    )

    def no_room(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video_file, "open_video_output", no_room)
    with pytest.raises(ToolError) as failed:
        export.write_video(path, Fraction(25), None, iter([np.zeros(SHAPE, np.uint8)]))
    assert str(failed.value) == f"{path}: cannot create the video: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_failure_names_the_file_and_ffmpegs_reason(tmp_path: Path) -> None:
    path = str(tmp_path / "a.mp4")
    writer = VideoFileWriter(path, Fraction(25))
    writer.write(make_grid_frame(0, SHAPE))

    class FailingStream:
        height, width = SHAPE

        def encode(self, frame: object) -> list:
            raise av.FFmpegError(5, "Input/output error")

    writer._stream = FailingStream()
    with pytest.raises(VideoFileError) as failed:
        writer.write(make_grid_frame(1, SHAPE))
    assert (failed.value.path, failed.value.failure) == (path, "writing the video failed")
    assert isinstance(failed.value.reason, av.FFmpegError) and str(failed.value).startswith(
        f"{path}: writing the video failed: "
    )
    writer.abort()
    assert list(tmp_path.iterdir()) == []
