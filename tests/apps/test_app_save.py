"""``imgstore-save``, run as a user runs it: a subprocess, its exit status, its output and the store it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import imgstore
from imgstore.apps.sources import render_testsrc

from toolrun import run_parallel

TOOL = str(Path(sys.executable).parent / "imgstore-save")
pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="imgstore-save is not installed: pip install -e .")


def save_all(*commands) -> list:
    """Run several ``imgstore-save`` commands at once (each a list of arguments): start-up dominates."""
    return run_parallel(TOOL, *commands, timeout=60)


def save(*args) -> subprocess.CompletedProcess:
    return save_all(args)[0]


def read_all(path: Path):
    """Every frame, frame number and frame time of a store, and its user metadata."""
    store = imgstore.new_for_filename(str(path))
    try:
        frames = [store.get_next_image() for _ in range(store.frame_count)]
        return (
            [img for img, _ in frames],
            [md[0] for _, md in frames],
            np.array([md[1] for _, md in frames]),
            dict(store.user_metadata),
        )
    finally:
        store.close()


def snapshot(path: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*"))}


def test_help_lists_sources_and_formats():
    proc = save("--help")
    assert proc.returncode == 0, proc.stderr
    for word in ("--source", "testsrc", "--format", "avc1/mp4", "--chunksize", "--frames", "--preview", "--crf"):
        assert word in proc.stdout


@pytest.mark.usefixtures("opencv")
def test_testsrc_lossless_frames_are_the_generator_s(tmp_path):
    args = ["--source", "testsrc", "--size", "96x64", "--fps", "50", "--frames", "12", "--chunksize", "5"]
    cases = [("npy", False), ("png", True)]
    before = time.time()
    commands = ([tmp_path / fmt, "--format", fmt, *args] + (["--color"] if color else []) for fmt, color in cases)
    procs = save_all(*commands)
    for (fmt, color), proc in zip(cases, procs):
        dest = tmp_path / fmt
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"wrote 12 frames ({fmt}) in ") and proc.stdout.rstrip().endswith(f": {dest}")

        images, numbers, times, _ = read_all(dest)
        assert numbers == list(range(12))
        np.testing.assert_allclose(np.diff(times), 1 / 50, atol=1e-6)  # float64 near 1.7e9 s: 0.24 us steps
        assert before <= times[0] <= time.time()
        for number, img in zip(numbers, images):
            np.testing.assert_array_equal(img, render_testsrc(number, (96, 64), color))
        assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == ["000000", "000001", "000002"]


def test_testsrc_default_into_avc1_shows_the_frame_numbers(tmp_path):
    dest = tmp_path / "store"
    proc = save(dest, "--source", "testsrc", "--format", "avc1/mp4", "--size", "160x120", "--frames", "30", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # --quiet

    store = imgstore.new_for_filename(str(dest))
    assert store.frame_count == 30 and store.image_shape == (120, 160)
    for number in (0, 13, 29):
        img, (frame_number, _) = store.get_image(number)
        errors = {n: np.abs(img.astype(int) - render_testsrc(n, (160, 120))).mean() for n in range(30)}
        assert frame_number == number and min(errors, key=errors.get) == number
        assert errors[number] < 4
    store.close()


def write_video(path: Path, codec: str, rate: int, count: int, size=(64, 48)) -> list:
    """A video of ``render_testsrc`` 0..count-1 at ``rate`` fps; returns the frames."""
    import av

    frames = [render_testsrc(n, size, color=True) for n in range(count)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        stream.time_base = Fraction(1, rate)
        for n, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return frames


def test_video_files(tmp_path):
    cases = [("clip.mkv", "ffv1", 10, "npy"), ("clip.mp4", "h264", 30, "avc1/mp4")]
    written = {}
    for name, codec, rate, _ in cases:
        written[name] = write_video(tmp_path / name, codec, rate, 25)
        os.utime(tmp_path / name, (1_600_000_000.0, 1_600_000_000.0))
    procs = save_all(*([tmp_path / f"to-{fmt}", "--source", tmp_path / n, "--format", fmt] for n, _, _, fmt in cases))
    for (name, codec, rate, fmt), proc in zip(cases, procs):
        assert proc.returncode == 0, proc.stderr
        assert "25/25" in proc.stderr  # the progress bar knew the total (mkv does not say: packets counted)

        images, numbers, times, _ = read_all(tmp_path / f"to-{fmt}")
        assert numbers == list(range(25))
        assert times[0] == pytest.approx(1_600_000_000.0)  # no creation_time tag: the file's mtime
        np.testing.assert_allclose(np.diff(times), 1 / rate, atol=1e-3)
        if codec == "ffv1":  # lossless all the way
            for img, expected in zip(images, written[name]):
                np.testing.assert_array_equal(img, expected)


def make_store(path: Path, fmt: str = "npy", count: int = 10, shape=(48, 64)) -> tuple:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]
    numbers = [1000 + 3 * i for i in range(count)]
    times = [1_500_000_000.123 + 0.25 * i + (0.01 if i % 2 else 0) for i in range(count)]
    metadata = {"genotype": "wt", "camera": {"serial": 42, "gain": 1.5}}
    with imgstore.new_for_format(fmt, path=str(path), imgshape=shape, chunksize=4, metadata=metadata) as store:
        for img, number, t in zip(images, numbers, times):
            store.add_image(img, frame_number=number, frame_time=t)
    return images, numbers, times, metadata


@pytest.mark.usefixtures("opencv")
def test_store_to_store_keeps_numbers_times_metadata_and_pixels(tmp_path):
    images, numbers, times, metadata = make_store(tmp_path / "src")
    proc = save(tmp_path / "dest", "--source", tmp_path / "src", "--format", "png", "--chunksize", "3")
    assert proc.returncode == 0, proc.stderr
    got_images, got_numbers, got_times, got_metadata = read_all(tmp_path / "dest")
    assert got_numbers == numbers
    np.testing.assert_array_equal(got_times, times)
    assert got_metadata == metadata
    for got, expected in zip(got_images, images):
        np.testing.assert_array_equal(got, expected)


def extra_records(path: Path) -> list:
    """Every extra-data row of a store as written (JSON objects), in chunk order."""
    store = imgstore.new_for_filename(str(path))
    try:
        files = store.find_extra_data_files()
    finally:
        store.close()
    return [row for name in files for row in json.loads(Path(name).read_text())]


def make_store_with_extra_data(path: Path, fmt: str = "npy") -> None:
    """A store of 10 frames (numbers 1000, 1003...) with extra data before, between and after frames."""
    with imgstore.new_for_format(fmt, path=str(path), imgshape=(48, 64), chunksize=4) as store:
        store.add_extra_data(event="armed")  # before any frame: frame_index -1
        for i in range(10):
            store.add_image(np.full((48, 64), i, np.uint8), frame_number=1000 + 3 * i, frame_time=1_500_000_000.5 + i)
            if i % 3 == 0:
                store.add_extra_data(temperature=20.0 + i / 4)
            if i == 7:
                store.add_extra_data(event="door", where=[1, 2], note="ünïcode ✓")
                store.add_extra_data(temperature=22.5)


def test_store_to_store_copies_extra_data_with_its_frames(tmp_path):
    src = tmp_path / "src"
    make_store_with_extra_data(src)
    expected = extra_records(src)
    assert [r["frame_index"] for r in expected] == [-1, 0, 3, 6, 7, 7, 9]
    # a row that lost its frame_index (hand-edited, or another writer's) is placed by its frame_number
    chunk1 = src / "000001" / "index.extra.json"
    rows = json.loads(chunk1.read_text())
    assert rows[0]["frame_number"] == 1009
    del rows[0]["frame_index"]
    chunk1.write_text(json.dumps(rows))

    video = tmp_path / "video"  # a video store keeps its extra data beside its chunks, not in folders
    make_store_with_extra_data(video, "mjpeg/avi")
    assert extra_records(video) == expected

    cases = {
        "all": [src, "--format", "png", "--chunksize", "3"],
        "first6": [src, "--format", "npy", "--frames", "6"],
        "from-video": [video, "--format", "avc1/mp4"],
    }
    procs = save_all(*([tmp_path / name, "--source", *args, "-q"] for name, args in cases.items()))
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""

    # every row, with the same values, tagged with the same frame (number, time and position)
    assert extra_records(tmp_path / "all") == expected
    assert extra_records(tmp_path / "from-video") == expected
    # --frames 6: frames 0..5 and the rows that followed them; the rest followed frames not saved
    assert extra_records(tmp_path / "first6") == [r for r in expected if r["frame_index"] <= 5]
    _, numbers, times, _ = read_all(tmp_path / "first6")
    for row in extra_records(tmp_path / "first6")[1:]:
        assert (numbers[row["frame_index"]], times[row["frame_index"]]) == (row["frame_number"], row["frame_time"])

    with imgstore.new_for_filename(str(tmp_path / "all")) as store:
        df = store.get_extra_data()
    assert list(df["frame_number"].iloc[1:]) == [1000, 1009, 1018, 1021, 1021, 1027]
    assert df["note"].iloc[4] == "ünïcode ✓" and df["where"].iloc[4] == [1, 2]


def test_upstream_store_extra_data_is_copied(tmp_path, fixtures_dir):
    """A store written by upstream imgstore 0.4.0 (jpg, colour, extra data in three chunks), first 10 frames."""
    src = fixtures_dir / "dir_jpg_color_extra"
    proc = save(tmp_path / "copy", "--source", src, "--format", "npy", "--frames", "10", "-q")
    assert proc.returncode == 0, proc.stderr
    expected = [row for row in extra_records(src) if row["frame_index"] < 10]
    assert len(expected) == 4 and expected[-1]["frame_index"] == 7
    assert extra_records(tmp_path / "copy") == expected


def test_images_in_name_order_timed_by_mtime(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    expected = []
    for i in range(1, 12):  # img1 .. img11: img10 sorts after img9
        img = render_testsrc(i, (40, 30), color=True)
        path = folder / f"img{i}.png"
        cv2.imwrite(str(path), img)
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        expected.append(img)
    (folder / "notes.txt").write_text("not an image")
    sources = {"folder": folder, "glob": folder / "img*.png"}
    procs = save_all(*([tmp_path / name, "--source", src, "--format", "npy"] for name, src in sources.items()))
    for name, proc in zip(sources, procs):
        assert proc.returncode == 0, proc.stderr
        images, numbers, times, _ = read_all(tmp_path / name)
        assert numbers == list(range(11))
        np.testing.assert_array_equal(times, [1_700_000_000 + i for i in range(1, 12)])
        for got, want in zip(images, expected):
            np.testing.assert_array_equal(got, want)


def test_existing_destination_is_refused_and_left_alone(tmp_path):
    make_store(tmp_path / "store", count=3)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    (tmp_path / "empty").mkdir()  # an empty directory is fine
    before = snapshot(tmp_path)
    cases = {"store": "already holds a store", "busy": "not empty", "file": "not a directory", "empty": None}
    procs = save_all(*([tmp_path / dest, "--source", "testsrc", "--format", "npy", "--frames", "2"] for dest in cases))
    for (dest, words), proc in zip(cases.items(), procs):
        if words is None:
            assert proc.returncode == 0, proc.stderr
            continue
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("imgstore-save: error: ")
        assert str(tmp_path / dest) in proc.stderr and words in proc.stderr
        assert proc.stdout == ""
    assert imgstore.new_for_filename(str(tmp_path / "empty")).frame_count == 2
    assert {p: v for p, v in snapshot(tmp_path).items() if "empty" not in p.parts} == {
        p: v for p, v in before.items() if "empty" not in p.parts
    }


@pytest.mark.usefixtures("opencv")
def test_bad_usage_exits_2_and_bad_source_1_before_writing(tmp_path):
    cases = [
        (["--format", "nope"], 2, "invalid choice"),
        (["--format", "npy", "--crf", "20"], 2, "no encoder settings"),
        (["--source", tmp_path / "nothing.mp4"], 1, str(tmp_path / "nothing.mp4")),
        (["--source", tmp_path / "notes.mp4"], 1, str(tmp_path / "notes.mp4")),
        (["--format", "mjpeg", "--frames", "2", "-q"], 0, ""),  # upstream's name of mjpeg/avi
    ]
    (tmp_path / "notes.mp4").write_text("not a video")
    procs = save_all(*([tmp_path / f"store{i}", "--source", "testsrc", *args] for i, (args, _, _) in enumerate(cases)))
    for i, ((_, status, words), proc) in enumerate(zip(cases, procs)):
        assert proc.returncode == status, proc.stderr
        assert words in proc.stderr
        if status == 1:
            assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("imgstore-save: error: ")
        if status:
            assert not (tmp_path / f"store{i}").exists()
    with imgstore.new_for_filename(str(tmp_path / f"store{len(cases) - 1}")) as store:
        assert store.frame_count == 2 and isinstance(store, imgstore.VideoImgStore)
        assert store.chunks == [0] and (tmp_path / f"store{len(cases) - 1}" / "000000.avi").exists()


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="DISPLAY is an X11 matter")
def test_preview_without_a_display_fails_in_one_line_before_writing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    dead = next(n for n in range(900, 1000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    cases = {"unset": env, "dead": dict(env, DISPLAY=f":{dead}")}
    for name, case_env in cases.items():
        dest = tmp_path / name
        proc = run_parallel(TOOL, [dest, "--source", "testsrc", "--preview", "--frames", "2"], env=case_env)[0]
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("imgstore-save: error: --preview: ")
        assert ("DISPLAY is not set" if name == "unset" else f":{dead}") in proc.stderr
        assert not dest.exists()


def test_interrupt_closes_the_store_cleanly(tmp_path):
    """Ctrl-C (and SIGTERM) during an endless recording: exit 130 and every frame written is readable."""
    signums = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM}
    args = ["--source", "testsrc", "--frames", "0", "--size", "64x48", "--format", "avc1/mp4"]
    args += ["--realtime", "--fps", "100"]  # ~100 frames a second: light on the CPU
    procs = {
        name: subprocess.Popen(
            [TOOL, str(tmp_path / name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in signums
    }
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all((tmp_path / name / "metadata.yaml").exists() for name in procs):
            time.sleep(0.05)
        time.sleep(0.5)  # recording, at ~100 frames a second
        for name, proc in procs.items():
            proc.send_signal(signums[name])
        outputs = {name: proc.communicate(timeout=20) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()

    for name, proc in procs.items():
        out, err = outputs[name]
        assert proc.returncode == 130, err
        assert err.rstrip().endswith("imgstore-save: interrupted")
        assert out.startswith("wrote ") and "(avc1/mp4)" in out

        dest = tmp_path / name
        store = imgstore.new_for_filename(str(dest))
        count = store.frame_count
        assert count > 10
        assert store.get_frame_metadata()["frame_number"] == list(range(count))
        img, (number, _) = store.get_image(count - 1)
        assert number == count - 1
        assert np.abs(img.astype(int) - render_testsrc(count - 1, (64, 48))).mean() < 8
        assert not (dest / ".lock").exists()
        store.close()


# ----------------------------------------------------------------------------------------------
# sources that were lost: TIFF pages, deep video, images and videos timed by --fps/--start-time
# ----------------------------------------------------------------------------------------------
def test_every_page_of_a_multipage_tiff_is_a_frame(tmp_path):
    rng = np.random.default_rng(3)
    pages = [rng.integers(0, 65535, (30, 40), dtype=np.uint16, endpoint=True) for _ in range(5)]
    assert cv2.imwritemulti(str(tmp_path / "stack.tif"), pages)
    proc = save(tmp_path / "pages", "--source", tmp_path / "stack.tif", "--format", "npy")
    assert proc.returncode == 0 and "5/5" in proc.stderr, proc.stderr
    images, numbers, _, _ = read_all(tmp_path / "pages")
    assert numbers == [0, 1, 2, 3, 4]
    for img, page in zip(images, pages):
        np.testing.assert_array_equal(img, page)  # 16 bits kept, every page in order


def test_fps_and_start_time_time_images_and_videos(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((8, 8), i * 50, np.uint8))
        os.utime(folder / f"img{i}.png", (1_000_000 + 7 * i, 1_000_000 + 7 * i))  # irregular mtimes
    write_video(tmp_path / "clip.mkv", "ffv1", 10, 6)
    procs = save_all(
        [tmp_path / "a", "--source", folder, "--format", "npy", "--fps", "4", "--start-time", "1700000000"],
        [tmp_path / "b", "--source", folder, "--format", "npy", "--start-time", "2023-11-14T22:13:20Z"],
        [tmp_path / "c", "--source", tmp_path / "clip.mkv", "--format", "npy", "--fps", "50"],
    )
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    procs.append(save(tmp_path / "d", "--source", tmp_path / "b", "--fps", "50"))  # a store: its own times
    np.testing.assert_allclose(read_all(tmp_path / "a")[2], 1_700_000_000 + np.arange(4) / 4)
    np.testing.assert_allclose(read_all(tmp_path / "b")[2], 1_700_000_000 + 7 * np.arange(4))  # spacing kept
    c_times = read_all(tmp_path / "c")[2]
    np.testing.assert_allclose(np.diff(c_times), 0.02, atol=1e-6)  # the video's own 10 fps timestamps replaced
    assert procs[3].returncode == 1 and "a store's frames keep their times" in procs[3].stderr


def test_deep_video_stays_16_bit_where_the_format_holds_it(tmp_path):
    import av

    path = tmp_path / "deep.mov"
    ramp = (np.arange(64, dtype=np.uint16)[None, :, None] * 1000).repeat(48, axis=0).repeat(3, axis=2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("prores_ks", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv422p10le"
        for n in range(3):
            frame = av.VideoFrame.from_ndarray(ramp, format="bgr48le")
            frame.pts = n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    deep, cut = save_all(
        [tmp_path / "deep-png", "--source", path, "--format", "png"],
        [tmp_path / "cut-avc1", "--source", path, "--format", "avc1/mp4"],
    )
    assert deep.returncode == 0 and "WARNING" not in deep.stderr, deep.stderr
    img = read_all(tmp_path / "deep-png")[0][0]
    assert img.dtype == np.uint16 and img.shape == (48, 64, 3)
    assert np.abs(img.astype(int) - ramp.astype(int)).max() < 1500  # 10 bits of 16: within a few 10-bit levels
    assert len(np.unique(img[24, :, 1] >> 6)) > 60  # more than 8 bits of levels survive
    assert cut.returncode == 0 and "uint16 frames cut to 8 bits (format avc1/mp4" in cut.stderr, cut.stderr
    assert read_all(tmp_path / "cut-avc1")[0][0].dtype == np.uint8


def test_only_deep_unsigned_frames_are_cut_to_8_bits(tmp_path):
    """Float frames are not 'deeper' frames: a format that cannot hold them refuses them in words."""
    with imgstore.new_for_format("npy", path=str(tmp_path / "f32"), imgshape=(8, 8), imgdtype=np.float32,
                                 chunksize=5) as store:  # fmt: skip
        store.add_image(np.full((8, 8), 0.5, np.float32), 0, 1_700_000_000.0)
    proc = save(tmp_path / "out", "--source", tmp_path / "f32", "--format", "mjpeg/avi")
    assert proc.returncode == 1 and "cannot hold float32 images" in proc.stderr and "TypeError" not in proc.stderr
