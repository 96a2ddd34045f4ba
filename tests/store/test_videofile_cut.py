"""Plain videos cut short (a recorder killed, a copy interrupted) read as what is left of them.

Every cut file either opens, and then each frame it lists is the whole file's frame of the same
time (checked against the whole file at cut points spread over it), or is refused with an error
naming it. A last packet cut short never becomes a frame filled in by the decoder.
"""

from __future__ import annotations

import logging
import random
import subprocess
from pathlib import Path
from typing import Dict, List

import av
import numpy as np
import pytest
from ffmpeg_program import require_ffmpeg

import imgstore
from imgstore.codecs.video_av_read import PyAVChunkReader
from imgstore.errors import FrameReadError

from remote_servers import http_server  # noqa: F401 - fixture

FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6"]
VFR = ["-c:v", "libx264", "-vf", "setpts='PTS+0.02*N*N/TB'", "-fps_mode", "vfr"]
#: file name -> how ffmpeg writes it: each container's own way of ending (or not) in a damaged packet
FILES: Dict[str, List[str]] = {
    "faststart.mp4": ["-c:v", "libx264", "-bf", "3", "-movflags", "+faststart"],
    "fragmented.mp4": ["-c:v", "libx264", "-bf", "2", "-movflags", "+frag_keyframe+empty_moov"],
    "hevc.mkv": ["-c:v", "libx265", "-x265-params", "log-level=none"],
    "h264.mkv": ["-c:v", "libx264", "-bf", "3"],
    "h264.ts": ["-c:v", "libx264", "-bf", "3"],
    "open-gop.ts": ["-c:v", "libx264", "-bf", "3", "-g", "50", "-x264-params", "open-gop=1"],
    "mpeg2.ts": ["-c:v", "mpeg2video", "-bf", "2", "-g", "12"],
    "mpeg2.mpg": ["-c:v", "mpeg2video", "-bf", "2", "-g", "12"],
    "mjpeg.avi": ["-c:v", "mjpeg"],
    "vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime"],
    # variable frame timing: steps that grow, with and without B-frames
    "vfr-fragmented.mp4": [*VFR, "-bf", "0", "-movflags", "+frag_keyframe+empty_moov"],
    "vfr-bframes.mkv": [*VFR, "-bf", "3"],
    "vfr-bframes.ts": [*VFR, "-bf", "3"],
}
CUTS_PER_FILE = 12


@pytest.fixture(scope="module")
def whole_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_ffmpeg()
    folder = tmp_path_factory.mktemp("whole")
    for name, options in FILES.items():
        subprocess.run([*FFMPEG, *SOURCE, *options, "-pix_fmt", "yuv420p", name], check=True, cwd=folder, timeout=120)
    subprocess.run([*FFMPEG, *SOURCE, "-c:v", "libx264", "moov-last.mov"], check=True, cwd=folder, timeout=120)
    return folder


def frames_of(path: Path) -> tuple:
    with imgstore.new_for_filename(str(path), start_time=0) as store:
        images = [store.get_image(None, frame_index=i)[0] for i in range(store.frame_count)]
        return images, store.get_frame_metadata()


def whole_frames_before(path: Path, end: int) -> int:
    """How many frames of the whole file have their packet entirely before byte ``end`` (0: the
    container does not say where its packets are)."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    if any(p.pos is None or p.pos < 0 for p in packets):
        return 0
    return sum(1 for p in packets if p.pos + p.size <= end)


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_cut_anywhere_reads_the_frames_before_the_cut_exactly(
    whole_files: Path, tmp_path: Path, name: str
) -> None:
    whole = whole_files / name
    images, metadata = frames_of(whole)
    data = whole.read_bytes()
    rng = random.Random(name)
    opened = 0
    for fraction in sorted(rng.uniform(0.15, 0.995) for _ in range(CUTS_PER_FILE)):
        end = int(len(data) * fraction)
        cut = tmp_path / f"{end}-{name}"
        cut.write_bytes(data[:end])
        try:
            imgstore.new_for_filename(str(cut), start_time=0).close()
        except FrameReadError as exc:  # refused when opened, naming it; else every frame it lists reads
            assert str(cut) in str(exc)
            continue
        cut_images, cut_metadata = frames_of(cut)
        opened += 1
        count = len(cut_images)
        assert 0 < count < len(images), (name, end)
        assert cut_metadata["frame_number"] == list(range(count))
        # each frame is the whole file's frame of the same time (B-frames a cut lost leave gaps)
        position = {t: i for i, t in enumerate(metadata["frame_time"])}
        for i, when in enumerate(cut_metadata["frame_time"]):
            assert when in position and np.array_equal(cut_images[i], images[position[when]]), (name, end, i)
        # salvaged, not given up on: at most a damaged last GOP is lost
        assert count >= whole_frames_before(whole, end) - 30, (name, end, count)
    assert opened >= CUTS_PER_FILE - 2, name


def test_a_salvaged_file_says_so(whole_files: Path, tmp_path: Path, caplog) -> None:
    data = (whole_files / "faststart.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with caplog.at_level(logging.WARNING, logger="imgstore"):
        with imgstore.new_for_filename(str(cut)) as store:
            count = store.frame_count
    assert f"{cut}: the file is cut short; its {count} whole frames are read" in caplog.text


def test_an_mp4_cut_before_its_header_is_named_for_what_it_is(whole_files: Path, tmp_path: Path) -> None:
    data = (whole_files / "moov-last.mov").read_bytes()
    for end, words in (
        (len(data) // 2, "cut short before its header"),
        (len(data) - 40, "cut short inside its header"),
    ):
        cut = tmp_path / f"{end}.mov"
        cut.write_bytes(data[:end])
        with pytest.raises(FrameReadError, match=words) as err:
            imgstore.new_for_filename(str(cut))
        assert str(cut) in str(err.value)


def test_whole_files_with_dropped_frames_are_not_taken_for_cut_ones(tmp_path: Path, caplog) -> None:
    """An AVI writer fills a dropped frame with an empty chunk its header counts; a frame dropped
    near the end of a B-frame file leaves a gap among the last frames: both files are whole."""
    require_ffmpeg()
    drop = ["-fps_mode", "passthrough"]
    for name, dropped, codec in (
        ("drop.avi", 50, ["-c:v", "mjpeg"]),
        ("drop.mp4", 147, ["-c:v", "libx264", "-bf", "3"]),
    ):
        subprocess.run(
            [*FFMPEG, *SOURCE, "-vf", f"select='not(eq(n\\,{dropped}))'", *drop, *codec, name],
            check=True,
            cwd=tmp_path,
            timeout=120,
        )
        with caplog.at_level(logging.WARNING, logger="imgstore"):
            images, _ = frames_of(tmp_path / name)
        assert len(images) == 149 and "cut short" not in caplog.text, name
        with av.open(str(tmp_path / name)) as container:
            decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        assert len(decoded) == 149
        assert all(np.array_equal(a, b) for a, b in zip(images, decoded)), name


def test_an_mp4_cut_anywhere_in_its_header_is_our_error(whole_files: Path, tmp_path: Path) -> None:
    data = (whole_files / "faststart.mp4").read_bytes()
    for end in range(8, 2000, 37):
        cut = tmp_path / f"{end}.mp4"
        cut.write_bytes(data[:end])
        with pytest.raises(FrameReadError) as err:
            imgstore.new_for_filename(str(cut), start_time=0)
        assert str(cut) in str(err.value)


def test_a_frame_that_decodes_with_errors_is_refused_not_returned(whole_files: Path, tmp_path: Path) -> None:
    """The chunk reader itself: a last packet cut short is not handed back as the frame recorded."""
    data = (whole_files / "h264.ts").read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as container:
        count = sum(1 for p in container.demux(container.streams.video[0]) if p.size)
    reader = PyAVChunkReader(str(cut), (120, 160, 3), "uint8")
    try:
        with pytest.raises(FrameReadError, match="damaged in the file"):
            for i in range(count):
                reader.read(i)
    finally:
        reader.close()


def test_an_mp4_cut_after_its_header_reads_at_a_url_as_on_disk(whole_files: Path, http_server) -> None:  # noqa: F811
    """Its header lists frames past the end of the file: they are not trusted at a URL either."""
    data = (whole_files / "faststart.mp4").read_bytes()
    root, url, _ = http_server
    cut = Path(root) / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 5])
    local_images, local_metadata = frames_of(cut)
    with imgstore.new_for_filename(f"{url}/cut.mp4", start_time=0) as store:
        assert store.get_frame_metadata() == local_metadata
        for i in (0, len(local_images) - 1):
            assert np.array_equal(store.get_image(None, frame_index=i)[0], local_images[i])
