"""A plain video file opened as a store: every frame, exactly, against PyAV decoding the file itself.

The files are made here with PyAV the way other tools make them: H.264 with B-frames (libx264's
defaults), variable frame timing, grey FFV1, 10-bit ProRes, and a ``creation_time`` tag.
"""

from __future__ import annotations

import os
import random
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from ffmpeg_program import require_ffmpeg

import imgstore
from imgstore.errors import FrameReadError, ImgStoreError
from imgstore.store.videofile import VideoFileStore

from framecodes import decode_grid, make_grid_frame
from remote_servers import gop_bytes, http_server  # noqa: F401 - fixture

SIZE = (96, 128)  # height, width
CREATED = "2024-06-01T10:00:00.000000Z"


def write_video(path: Path, codec: str, pix_fmt: str, pts: list, grey: bool = False, deep: bool = False,
                options: dict | None = None, created: str | None = CREATED) -> None:  # fmt: skip
    """Frames that draw their own index, at the given timestamps (in 1/1000 s); ``created``: the
    creation_time tag (None: none)."""
    with av.open(str(path), "w") as container:
        if created is not None:
            container.metadata["creation_time"] = created
        stream = container.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = SIZE[1], SIZE[0], pix_fmt
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts):
            img = make_grid_frame(i, SIZE, dtype=np.uint16 if deep else np.uint8, noise=False)
            if grey:
                frame = av.VideoFrame.from_ndarray(img, format="gray16le" if deep else "gray")
            else:
                frame = av.VideoFrame.from_ndarray(np.dstack([img] * 3), format="bgr48le" if deep else "bgr24")
            frame.pts = t
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def decoded(path: Path, fmt: str) -> list:
    """Every frame of the file, decoded in order by PyAV (the reference)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format=fmt) for frame in container.decode(video=0)]


CASES = {
    # name: (codec, pix_fmt, grey, deep, ndarray format of the reference, extra encoder options)
    "h264-bframes.mp4": ("libx264", "yuv420p", False, False, "bgr24", {"bf": "3", "g": "12"}),
    "ffv1-grey.mkv": ("ffv1", "gray", True, False, "gray", {}),
    "prores-10bit.mov": ("prores_ks", "yuv422p10le", False, True, "bgr48le", {}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_frame_is_the_files_own_in_order_and_by_position(tmp_path: Path, name: str) -> None:
    codec, pix_fmt, grey, deep, reference_format, options = CASES[name]
    pts = [0, 40, 80, 130, 160, 200, 260, 280, 320, 400] * 1 + [440 + 40 * k for k in range(30)]  # uneven
    path = tmp_path / name
    write_video(path, codec, pix_fmt, pts, grey, deep, options)
    reference = decoded(path, reference_format)
    before = sorted(os.listdir(tmp_path))
    with imgstore.new_for_filename(str(path)) as store:
        assert store.frame_count == len(reference) == len(pts)
        assert store.image_shape == (SIZE if grey else (*SIZE, 3))
        assert store.view.metadata.imgdtype == ("uint16" if deep else "uint8")
        md = store.get_frame_metadata()
        assert md["frame_number"] == list(range(len(pts)))
        t0 = 1717236000.0  # the creation_time tag
        np.testing.assert_allclose(md["frame_time"], [t0 + t / 1000 for t in pts], atol=1e-6)
        for k, (img, (number, _)) in enumerate(store):
            assert number == k and np.array_equal(img, reference[k]), k
        for k in random.Random(1).sample(range(len(pts)), 15):
            assert np.array_equal(store.get_image(None, frame_index=k)[0], reference[k]), k
        assert store.get_nearest_image(t0 + 0.265)[1][0] == 6  # 260 ms is nearest 265 ms
    assert sorted(os.listdir(tmp_path)) == before  # nothing written beside the video


def test_tools_and_readers_take_a_plain_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, "libx264", "yuv420p", [40 * k for k in range(25)], options={"bf": "2", "g": "10"})
    with imgstore.MultiStore([str(path), str(path)], names=["a", "b"]) as multi:
        assert len(multi) == 25 and multi[7].frames[1].frame_index == 7
    # the OpenCV-style reader over the file against OpenCV over the same file
    ours, theirs = imgstore.VideoCapture(str(path)), cv2.VideoCapture(str(path))
    for position in (0, 13, 5, 24):
        ours.set(cv2.CAP_PROP_POS_FRAMES, position)
        theirs.set(cv2.CAP_PROP_POS_FRAMES, position)
        (ok_a, a), (ok_b, b) = ours.read(), theirs.read()
        assert ok_a and ok_b and decode_grid(a) == decode_grid(b) == position
    ours.release()
    theirs.release()
    from imgstore import edit

    with pytest.raises(ImgStoreError, match=r"not in a format stores are written in; make a store of it first"):
        edit.trim(str(path), str(path.parent / "cut"), 1, 5)


def test_a_plain_video_is_read_only_and_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    write_video(path, "ffv1", "gray", [0, 40, 80], grey=True)
    with pytest.raises(ImgStoreError, match="reading only"):
        VideoFileStore(str(path), mode="w")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(FrameReadError, match=r"broken\.mp4: not a video FFmpeg can read"):
        imgstore.new_for_filename(str(broken))
    with pytest.raises(ImgStoreError, match="not an imgstore"):
        imgstore.new_for_filename(str(tmp_path / "notes.txt"))


# ----------------------------------------------------------------------------------------------
# files from ffmpeg that an adversarial review found read wrongly: refused with a way out, or fixed
# ----------------------------------------------------------------------------------------------
FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=8"]


@pytest.fixture(scope="module")
def ffmpeg_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess

    require_ffmpeg()
    folder = tmp_path_factory.mktemp("ffmpeg")

    def run(*args: str) -> None:
        subprocess.run([*FFMPEG, *args], check=True, cwd=folder, timeout=120)

    run(*SOURCE, "-c:v", "libx264", "-bf", "2", "-g", "25", "base.mp4")
    run("-ss", "3.1", "-i", "base.mp4", "-c", "copy", "editlist.mp4")  # a stream-copied cut: an edit list
    run(*SOURCE, "-c:v", "mpeg2video", "-bf", "2", "-g", "12", "mpeg2.ts")
    run(*SOURCE, "-c:v", "libx264", "-bf", "2", "h264.avi")  # AVI: no presentation times
    for name, pattern in (("a.ts", "testsrc2"), ("b.ts", "testsrc")):
        run("-f", "lavfi", "-i", f"{pattern}=size=160x120:rate=25:duration=2", "-c:v", "libx264", name)
    (folder / "joined.ts").write_bytes((folder / "a.ts").read_bytes() + (folder / "b.ts").read_bytes())
    run(*SOURCE, "-c:v", "libx264", "-f", "h264", "raw.h264")
    return folder


def test_files_whose_frames_cannot_be_placed_are_refused_with_a_way_out(ffmpeg_files: Path) -> None:
    for name, words in (
        ("editlist.mp4", "an edit list hides"),
        ("h264.avi", "AVI holds no presentation times for h264"),
        ("joined.ts", "joined end to end"),
    ):
        with pytest.raises(FrameReadError, match=words) as err:
            imgstore.new_for_filename(str(ffmpeg_files / name))
        assert f"imgstore-save NEW --source {ffmpeg_files / name}" in str(err.value)
    with pytest.raises(ImgStoreError, match="not an imgstore"):  # a raw stream has no timestamps: not a video file
        imgstore.new_for_filename(str(ffmpeg_files / "raw.h264"))


def test_the_last_gop_of_an_mpeg_ts_reads_by_position(ffmpeg_files: Path) -> None:
    """An MPEG-TS seek to the last keyframe can land at the end of the file: one keyframe further back."""
    path = ffmpeg_files / "mpeg2.ts"
    reference = decoded(path, "bgr24")
    for position in (199, 192, 150, 0):
        with imgstore.new_for_filename(str(path)) as store:  # freshly opened: the seek is the first read
            assert np.array_equal(store.get_image(None, frame_index=position)[0], reference[position]), position


def test_a_plain_video_store_pickles_and_refuses_to_be_written(ffmpeg_files: Path) -> None:
    import pickle

    path = str(ffmpeg_files / "base.mp4")
    with imgstore.new_for_filename(path) as store:
        again = pickle.loads(pickle.dumps(store))
        assert again.filename == path and again.frame_count == store.frame_count == 200
        again.close()
    with pytest.raises(ImgStoreError, match="opened for reading only"):
        imgstore.new_for_filename(path, mode="w")


# ----------------------------------------------------------------------------------------------
# when the first frame was taken: the caller, the creation tag, a time in the name, the file's time
# ----------------------------------------------------------------------------------------------
STAMPED = "CAMHDA301-20161113T000000Z.mp4"
T_NAME = 1478995200.0  # 2016-11-13T00:00:00Z


def first_time(path: Path, **kwargs) -> float:
    with imgstore.new_for_filename(str(path), **kwargs) as store:
        return store.get_frame_metadata()["frame_time"][0]


def test_the_start_is_given_tagged_named_or_the_files_time(tmp_path: Path) -> None:
    import datetime

    tagged, named, plain = tmp_path / "tagged-20161113T000000Z.mp4", tmp_path / STAMPED, tmp_path / "plain.mp4"
    for path, created in ((tagged, CREATED), (named, None), (plain, None)):
        write_video(path, "libx264", "yuv420p", [40 * k for k in range(5)], created=created)
    os.utime(plain, (1_600_000_000, 1_600_000_000))
    assert first_time(tagged) == 1717236000.0  # the tag wins over the name
    assert first_time(named) == T_NAME
    assert first_time(plain) == 1_600_000_000  # nothing else: the file's modification time
    assert first_time(named, start_time=123.5) == 123.5  # the caller wins
    utc = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert first_time(tagged, start_time=utc) == utc.timestamp()
    assert first_time(named, start_time_pattern=None) == os.stat(named).st_mtime  # names not looked at


def test_a_name_pattern_can_be_changed_and_its_zone_is_kept(tmp_path: Path) -> None:
    import datetime

    from imgstore.store.videostart import time_in_name

    assert time_in_name("x/run_2016-11-13_01-02-03.250+02:00.mp4") == T_NAME - 7200 + 3723.25
    naive = datetime.datetime(2016, 11, 13, 1, 2, 3).timestamp()  # no zone: this machine's local time
    assert time_in_name("20161113_010203.mov") == naive
    assert time_in_name("trial-20161399T000000Z-20161113T000000Z.mov") == T_NAME  # no 99th month: the next
    assert time_in_name("no-time-here.mp4") is None
    path = tmp_path / "13.11.2016 00h00m00s.mp4"
    write_video(path, "libx264", "yuv420p", [0, 40], created=None)
    pattern = r"(?P<d>\d\d)\.(?P<m>\d\d)\.(?P<Y>\d{4}) (?P<H>\d\d)h(?P<M>\d\d)m(?P<S>\d\d)s"
    assert first_time(path, start_time_pattern=pattern) == datetime.datetime(2016, 11, 13).timestamp()
    assert first_time(path) == os.stat(path).st_mtime  # the default pattern finds no time in that name
    with pytest.raises(ImgStoreError, match="lacks the group"):
        first_time(path, start_time_pattern=r"(?P<Y>\d{4})")
    with pytest.raises(ImgStoreError, match="is neither seconds"):
        first_time(path, start_time="yesterday")


# ----------------------------------------------------------------------------------------------
# a plain video at a URL: the same frames, for about the bytes of the GOPs decoded
# ----------------------------------------------------------------------------------------------
def test_a_plain_video_at_a_url_reads_as_on_disk_for_about_its_gops(http_server) -> None:  # noqa: F811
    from imgstore.io.fs import REMOTE_BLOCK_SIZE

    root, url, traffic = http_server
    path = root / STAMPED
    size = (480, 640)
    with av.open(str(path), "w") as container:  # a camera's file: B-frames, GOPs of 50 frames, 2.5 MB
        options = {"bf": "2", "g": "50", "crf": "10", "preset": "ultrafast"}
        stream = container.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for i in range(150):
            frame = av.VideoFrame.from_ndarray(np.dstack([make_grid_frame(i, size)] * 3), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    traffic.reset()
    with imgstore.new_for_filename(f"{url}/{STAMPED}") as remote, imgstore.new_for_filename(str(path)) as local:
        opened = list(traffic.requests)
        assert f"/{STAMPED}" in opened and "/" not in opened  # its folder is never listed
        assert len(opened) <= 4 and traffic.total_bytes <= path.stat().st_size / 4, opened
        assert remote.frame_count == local.frame_count == 150
        assert remote.get_frame_metadata() == local.get_frame_metadata()
        assert remote.get_frame_metadata()["frame_time"][0] == T_NAME
        needs = gop_bytes(str(path))
        for position in random.Random(5).sample(range(150), 10):
            traffic.reset()
            img, (number, _) = remote.get_image(None, frame_index=position)
            assert np.array_equal(img, local.get_image(None, frame_index=position)[0])
            assert number == position and decode_grid(img[..., 0]) == position
            # the GOP's bytes, give or take the blocks at its two ends (and nothing of a header)
            assert traffic.total_bytes <= needs[position] + 2 * REMOTE_BLOCK_SIZE, position


def test_a_plain_video_at_a_url_pickles_and_missing_files_are_named(http_server) -> None:  # noqa: F811
    import pickle

    root, url, _ = http_server
    write_video(root / "clip.mkv", "ffv1", "gray", [0, 40, 80], grey=True)  # no frame list in its header
    with imgstore.new_for_filename(f"{url}/clip.mkv", start_time=100.0) as store:
        again = pickle.loads(pickle.dumps(store))
        assert again.filename == f"{url}/clip.mkv"
        assert again.get_frame_metadata() == store.get_frame_metadata()
        assert again.get_frame_metadata()["frame_time"] == [100.0, 100.04, 100.08]
        assert decode_grid(again.get_image(None, frame_index=2)[0]) == 2
        again.close()
    from imgstore.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match=r"missing\.mp4: no such file"):
        imgstore.new_for_filename(f"{url}/missing.mp4")
    # a signed URL's query is not part of the file's name; a local name may hold '#' or '?'
    with imgstore.new_for_filename(f"{url}/clip.mkv?signature=abc&expires=1", start_time=100.0) as signed:
        assert signed.frame_count == 3 and decode_grid(signed.get_image(None, frame_index=1)[0]) == 1
    write_video(root / "trial#3?.mkv", "ffv1", "gray", [0, 40], grey=True)
    with imgstore.new_for_filename(str(root / "trial#3?.mkv")) as local:
        assert local.frame_count == 2
    # a time in the name: after a '?' in a local name, and never in a URL's query
    write_video(root / "cam?20161113T000000Z.mkv", "ffv1", "gray", [0, 40], grey=True, created=None)
    assert first_time(root / "cam?20161113T000000Z.mkv") == T_NAME
    write_video(root / "cam-20161113T000000Z.mkv", "ffv1", "gray", [0, 40], grey=True, created=None)
    with imgstore.new_for_filename(f"{url}/cam-20161113T000000Z.mkv?expires=20300101T000000Z") as signed:
        assert signed.get_frame_metadata()["frame_time"][0] == T_NAME
