"""Videos whose file says to show them turned (a phone held upright) read upright, as players and
OpenCV show them: as a plain video store, and when copied with ``imgstore-save --source``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from ffmpeg_program import require_ffmpeg

import imgstore

from toolrun import run_parallel, tool


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``upright.mp4`` and the same packets in ``turned-90.mp4`` .. ``turned-270.mp4``, whose
    display matrices turn them anticlockwise by that many degrees."""
    require_ffmpeg()
    folder = tmp_path_factory.mktemp("turned")
    source = ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=2"]
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            *source,
            "-c:v",
            "libx264",
            "-bf",
            "2",
            "-pix_fmt",
            "yuv420p",
            "upright.mp4",
        ],
        check=True,
        cwd=folder,
        timeout=120,
    )
    for degrees in (90, 180, 270):
        with av.open(str(folder / "upright.mp4")) as src, av.open(str(folder / f"turned-{degrees}.mp4"), "w") as dst:
            stream = dst.add_stream_from_template(src.streams.video[0])
            stream.set_display_rotation(degrees)
            for packet in src.demux(src.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    dst.mux(packet)
    return folder


def frames(path: Path) -> list:
    with imgstore.new_for_filename(str(path)) as store:
        return [store.get_image(None, frame_index=i)[0] for i in range(store.frame_count)]


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_video_reads_upright_frame_for_frame(videos: Path, degrees: int) -> None:
    upright = frames(videos / "upright.mp4")
    path = videos / f"turned-{degrees}.mp4"
    with imgstore.new_for_filename(str(path)) as store:
        assert store.image_shape == np.rot90(upright[0], degrees // 90).shape
        order = [0, len(upright) - 1, 7, 3, 30, 29]  # random access and sequential runs
        for i in order + list(range(len(upright))):
            assert np.array_equal(store.get_image(None, frame_index=i)[0], np.rot90(upright[i], degrees // 90)), i
    # the way round OpenCV shows it (a reader we did not write; its colour conversion may differ a little)
    capture = cv2.VideoCapture(str(path))
    try:
        for i in range(3):
            ok, shown = capture.read()
            ours = np.rot90(upright[i], degrees // 90)
            assert ok and shown.shape == ours.shape
            assert np.abs(shown.astype(int) - ours).mean() < 2, i
    finally:
        capture.release()


def test_a_turned_video_is_saved_upright(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "saved"
    (proc,) = run_parallel(tool("imgstore-save"), [out, "--source", videos / "turned-90.mp4", "--format", "npy", "-q"])
    assert proc.returncode == 0, proc.stderr
    expected = frames(videos / "turned-90.mp4")
    with imgstore.new_for_filename(str(out)) as store:
        assert store.frame_count == len(expected)
        for i in (0, 11, len(expected) - 1):
            assert np.array_equal(store.get_image(None, frame_index=i)[0], expected[i]), i


def test_a_turn_some_frames_carry_in_their_own_data_turns_them_all(videos: Path, tmp_path: Path) -> None:
    """H.264 can say 'turn me' in a frame's own data (a display-orientation message), on some
    frames only: the file is read one way round, as its first frame says, every frame alike."""
    path = tmp_path / "sei.mkv"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(videos / "upright.mp4"), "-c:v", "copy",
         "-bsf:v", "h264_metadata=display_orientation=insert:rotate=90", str(path)],
        check=True,
        timeout=120,
    )  # fmt: skip
    upright = frames(videos / "upright.mp4")
    with av.open(str(path)) as container:
        turns = [f.rotation for f in container.decode(video=0)]
    assert turns[0] and not all(turns)  # (what makes this file a test: only some frames say so)
    images = frames(path)
    assert len(images) == len(upright)
    for image, straight in zip(images, upright):
        assert np.array_equal(image, np.rot90(straight, round(turns[0] / 90) % 4))
    out = tmp_path / "saved"
    (proc,) = run_parallel(tool("imgstore-save"), [out, "--source", path, "--format", "npy", "-q"])
    assert proc.returncode == 0, proc.stderr
    with imgstore.new_for_filename(str(out)) as store:
        assert store.frame_count == len(images) and np.array_equal(store.get_image(None, frame_index=5)[0], images[5])
