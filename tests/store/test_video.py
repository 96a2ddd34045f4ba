"""Video stores: frame-exact random access, GOP structures, encoder settings, backends and damaged chunks.

Every frame written here carries its own id (``make_grid_frame``), so a read that lands on the wrong
frame is caught by its pixels as well as by its ``(frame_number, frame_time)``.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import tempfile
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import yaml

import imgstore
from imgstore.codecs import get_codec
from imgstore.codecs.video_av import packet_index
from imgstore.errors import FrameReadError, ImgStoreError, UnsupportedFormatError

from framecodes import decode_grid, make_grid_frame

T0 = 1_600_000_000.0
GREY = (48, 64)
COLOUR = (48, 64, 3)
SHAPES = pytest.mark.parametrize("shape", [GREY, COLOUR], ids=["grey", "colour"])

VIDEO_FORMATS = [f for f in imgstore.get_supported_formats() if imgstore.VideoImgStore.supports_format(f)]
#: formats whose encoders are slow: fewer frames
SLOW_FORMATS = ("hevc/mp4", "av1/mkv")
#: formats whose encoder makes B-frames (reordered frames)
B_FRAME_FORMATS = [f for f in ("avc1/mp4", "h264/mkv", "hevc/mp4") if f in VIDEO_FORMATS]
H264_FORMATS = [f for f in ("avc1/mp4", "h264/mkv") if f in VIDEO_FORMATS]
#: formats with a keyframe interval setting
GOP_FORMATS = [f for f in ("avc1/mp4", "h264/mkv", "hevc/mp4", "av1/mkv", "ffv1/mkv") if f in VIDEO_FORMATS]
CRF_FORMATS = [f for f in ("avc1/mp4", "h264/mkv", "hevc/mp4", "av1/mkv") if f in VIDEO_FORMATS]
#: the FourCC each format would have if OpenCV wrote it (formats absent here have no OpenCV writer)
OPENCV_FOURCC = {"mjpeg/avi": "MJPG", "avc1/mp4": "avc1", "h264/mkv": "H264"}
EXTENSIONS = {".avi", ".mp4", ".mkv"}


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _numbers(n, first=0):
    """Frame numbers with gaps (so that a number one off is nearest to exactly one frame)."""
    return [1000 + 3 * i for i in range(first, first + n)]


def _times(n, first=0):
    """Irregular frame times, at least 50 ms apart."""
    gaps = np.random.default_rng(12345).uniform(0.05, 0.15, first + n)
    times = T0 + np.cumsum(gaps) - gaps[0]
    return [float(t) for t in times[first:]]


def _frame(i, shape, dtype=np.uint8):
    return make_grid_frame(i % 4096, shape, dtype)


def _write_store(path, fmt, shape, n, chunksize, dtype=np.uint8, frames=None, **kwargs):
    """A store of ``n`` grid frames (ids 0..n-1), or of ``frames``; returns its directory."""
    store = imgstore.new_for_format(fmt, path=str(path), imgshape=shape, imgdtype=dtype, chunksize=chunksize, **kwargs)
    for i, (number, time) in enumerate(zip(_numbers(n), _times(n))):
        store.add_image(_frame(i, shape, dtype) if frames is None else frames[i], number, time)
    store.close()
    return str(path)


def _read_sequential(store):
    """Every ``(img, (frame_number, frame_time))`` from ``get_next_image`` until ``EOFError``."""
    frames = []
    while True:
        try:
            frames.append(store.get_next_image())
        except EOFError:
            return frames


def _read_all(path, **kwargs):
    with imgstore.new_for_filename(str(path), **kwargs) as store:
        return _read_sequential(store)


def _check_grid_sequence(frames, n):
    """The sequential decode holds frames 0..n-1, in order, with the numbers and times written."""
    assert [decode_grid(img) for img, _ in frames] == list(range(n))
    assert [md for _, md in frames] == list(zip(_numbers(n), _times(n)))


def _chunk_paths(store_dir):
    return sorted(p for p in glob.glob(os.path.join(str(store_dir), "0*")) if os.path.splitext(p)[1] in EXTENSIONS)


def _chunk_starts(store_dir):
    """Store positions where a new chunk starts (from the chunk indexes), excluding 0."""
    lengths = [len(np.load(p)["frame_number"]) for p in sorted(glob.glob(os.path.join(str(store_dir), "0*.npz")))]
    return [int(s) for s in np.cumsum(lengths)[:-1] if 0 < s < sum(lengths)]


def _nearby(values, i, rng):
    """A query nearer ``values[i]`` than any other value (``values[i]`` itself when that is impossible)."""
    others = np.delete(np.asarray(values, dtype=np.float64), i)
    margin = 0.4 * float(np.min(np.abs(others - values[i]))) if len(others) else 1.0
    if isinstance(values[i], int):
        step = int(margin) if margin >= 1 else 0
        return values[i] + int(rng.choice([-step, step]))
    return values[i] + float(rng.uniform(-margin, margin))


def _access_plan(n, boundaries, n_random, rng):
    """Positions to visit: random jumps, with forward and backward runs across chunk boundaries inserted."""
    plan = [int(i) for i in rng.integers(0, n, n_random)]
    runs = [[0, n - 1, n - 1, 0], list(range(n - 1, -1, -max(1, n // 9)))]
    for b in boundaries:
        runs.append(list(range(min(b + 2, n - 1), max(b - 4, -1), -1)))  # backwards across the boundary
        runs.append(list(range(max(b - 2, 0), min(b + 3, n))))  # forwards across it
    for run in runs:
        at = int(rng.integers(0, len(plan) + 1))
        plan[at:at] = run
    return plan


def _assert_same(got, expected, context):
    img, md = got
    exp_img, exp_md = expected
    assert md == exp_md, f"{context}: got frame {md}, expected {exp_md}"
    assert img.shape == exp_img.shape and img.dtype == exp_img.dtype, f"{context}: {img.shape} {img.dtype}"
    if not np.array_equal(img, exp_img):
        diff = int(np.abs(img.astype(np.int64) - exp_img).max())
        raise AssertionError(
            f"{context}: pixels differ from the sequential decode (max abs diff {diff}, "
            f"grid id {decode_grid(img)} vs {decode_grid(exp_img)})"
        )


def _check_random_access(store, frames, boundaries, n_random=250, seed=0):
    """Random reads of every kind, each followed by ``get_next_image``, equal the sequential decode."""
    rng = np.random.default_rng(seed)
    n = len(frames)
    numbers = [md[0] for _, md in frames]
    times = [md[1] for _, md in frames]
    for step, i in enumerate(_access_plan(n, boundaries, n_random, rng)):
        how = int(rng.integers(4))
        if how == 0:
            got, call = store.get_image(None, frame_index=i), "get_image(None, frame_index=i)"
        elif how == 1:
            got, call = store.get_image(numbers[i]), "get_image(frame_number)"
        elif how == 2:
            got, call = store.get_image(_nearby(numbers, i, rng), exact_only=False), "get_image(n, exact_only=False)"
        else:
            got, call = store.get_nearest_image(_nearby(times, i, rng)), "get_nearest_image(t)"
        _assert_same(got, frames[i], f"step {step}: {call} for frame_index {i}")
        if i + 1 < n:
            _assert_same(store.get_next_image(), frames[i + 1], f"step {step}: get_next_image after frame_index {i}")
        else:
            with pytest.raises(EOFError):
                store.get_next_image()


def _demux_pts(path):
    """Presentation timestamps of a video file's packets, in decode order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p.pts for p in container.demux(stream) if p.pts is not None and p.size]


def _is_reordered(path):
    pts = _demux_pts(path)
    return pts != sorted(pts)


def _keyframe_positions(path):
    index = packet_index(str(path))
    return [index.pts.index(k) for k in index.keyframes]


def _has_leading_pictures(path):
    """True when frames decoded after a later keyframe are shown before it (open GOP)."""
    with av.open(str(path)) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(container.streams.video[0]) if p.pts is not None]
    later_keys = [(pos, pts) for pos, (pts, key) in enumerate(packets) if key and pos > 0]
    return any(any(pts < key_pts for pts, _ in packets[pos + 1 :]) for pos, key_pts in later_keys)


def _encode_with_pyav(path, ids, pts, time_base, options, container_format):
    """A colour H.264 file written directly with PyAV: grid frames ``ids`` at timestamps ``pts``."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height = COLOUR[1], COLOUR[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        for frame_id, frame_pts in zip(ids, pts):
            frame = av.VideoFrame.from_ndarray(_frame(frame_id, COLOUR), format="bgr24")
            frame.pts = int(frame_pts)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _opencv_grey_frames(chunk_path):
    """What upstream reads: OpenCV's BGR frames converted to grey."""
    capture = cv2.VideoCapture(str(chunk_path))
    frames = []
    while True:
        ok, img = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    capture.release()
    return frames


def _assert_grey_matches_opencv(store_dir):
    ours = [img for img, _ in _read_all(store_dir)]
    theirs = [img for chunk in _chunk_paths(store_dir) for img in _opencv_grey_frames(chunk)]
    assert len(ours) == len(theirs) > 0
    diffs = [int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(ours, theirs)]
    worst = int(np.argmax(diffs))
    assert diffs[worst] <= 1, f"frame {worst}: max abs diff {diffs[worst]} from OpenCV's grey"


def _opencv_can_write(fourcc, extension):
    """Ask OpenCV itself (not the library) whether it writes this FourCC: two frames to a temporary file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe" + extension)
        writer = cv2.VideoWriter(path, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), 25, (64, 48), True)
        ok = writer.isOpened()
        if ok:
            for i in range(2):
                writer.write(_frame(i, COLOUR))
        writer.release()
        return ok and os.path.isfile(path) and os.path.getsize(path) > 0


def _opencv_can_read(chunk_path):
    capture = cv2.VideoCapture(str(chunk_path))
    ok = capture.isOpened() and capture.read()[0]
    capture.release()
    return ok


# ----------------------------------------------------------------------------------------------
# 1. every writable format: random access equals sequential decode
# ----------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("opencv")
def test_video_formats_are_listed():
    assert {"mjpeg/avi", "avc1/mp4", "h264/mkv"} <= set(VIDEO_FORMATS)


@SHAPES
@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_random_access_equals_sequential_decode(tmp_path, fmt, shape):
    n, chunksize, n_random = (75, 30, 150) if fmt in SLOW_FORMATS else (150, 60, 250)
    settings = {"bframes": 2} if fmt in B_FRAME_FORMATS else {}
    path = _write_store(tmp_path / "s", fmt, shape, n, chunksize, **settings)
    if settings:
        assert _is_reordered(_chunk_paths(path)[0]), "the test store should hold B-frames"
    with imgstore.new_for_filename(path) as store:
        assert store.chunks == [0, 1, 2] and store.image_shape == shape
        frames = _read_sequential(store)
        _check_grid_sequence(frames, n)
        _check_random_access(store, frames, range(chunksize, n, chunksize), n_random)


@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_next_images_after_a_seek_are_the_following_frames(tmp_path, fmt):
    path = _write_store(tmp_path / "s", fmt, GREY, 40, 100)
    with imgstore.new_for_filename(path) as store:
        for start in (6, 22, 13):
            got = [store.get_image(None, frame_index=start)]
            got += [store.get_next_image() for _ in range(6)]
            ids, numbers = [decode_grid(img) for img, _ in got], [md[0] for _, md in got]
            assert ids == list(range(start, start + 7)), f"after get_image(frame_index={start}): grid ids {ids}"
            assert numbers == _numbers(7, first=start)


# ----------------------------------------------------------------------------------------------
# 2. GOP structures with H.264, open GOP and variable frame rate
# ----------------------------------------------------------------------------------------------
GOP_CASES = {
    "long-gop": (GREY, 320, 300, {"gop": 250, "bframes": 3}),
    "all-intra": (GREY, 150, 60, {"gop": 1}),
    "no-bframes": (COLOUR, 150, 60, {"bframes": 0}),
    "bframes3": (COLOUR, 150, 60, {"bframes": 3, "gop": 30}),
    "yuv444p": (COLOUR, 150, 60, {"pix_fmt": "yuv444p", "bframes": 2}),
    "gray": (GREY, 150, 60, {"pix_fmt": "gray", "bframes": 2}),
}


@pytest.mark.parametrize("case", GOP_CASES)
@pytest.mark.parametrize("fmt", H264_FORMATS)
def test_h264_gop_structures(tmp_path, fmt, case):
    shape, n, chunksize, settings = GOP_CASES[case]
    path = _write_store(tmp_path / "s", fmt, shape, n, chunksize, **settings)
    first_chunk = _chunk_paths(path)[0]
    if settings.get("gop") == 1:
        assert _keyframe_positions(first_chunk) == list(range(chunksize))
    if settings.get("bframes"):
        assert _is_reordered(first_chunk)
    with imgstore.new_for_filename(path) as store:
        frames = _read_sequential(store)
        _check_grid_sequence(frames, n)
        _check_random_access(store, frames, range(chunksize, n, chunksize), 150)


def _open_gop_file(path, ids, container_format):
    pts = range(len(ids))
    options = {"preset": "veryfast", "crf": "20", "bf": "3", "x264-params": "open-gop=1:keyint=30:scenecut=0"}
    _encode_with_pyav(path, ids, pts, Fraction(1, 25), options, container_format)


def _vfr_file(path, ids, container_format):
    gaps = np.random.default_rng(7).integers(5, 150, len(ids))  # milliseconds
    pts = np.cumsum(gaps) - gaps[0]
    options = {"preset": "veryfast", "crf": "20", "bf": "2", "x264-params": "keyint=25"}
    _encode_with_pyav(path, ids, pts, Fraction(1, 1000), options, container_format)
    return pts


@pytest.mark.parametrize("fmt", H264_FORMATS)
def test_inserted_open_gop_and_vfr_chunks(tmp_path, fmt):
    ext = "." + fmt.split("/")[1]
    container_format = "matroska" if ext == ".mkv" else "mp4"
    sizes = [40, 120, 100, 20]  # chunk 0 added, 1 open GOP, 2 VFR, 3 added
    starts = np.cumsum([0, *sizes]).tolist()
    n = starts[-1]
    open_gop, vfr = tmp_path / ("open_gop" + ext), tmp_path / ("vfr" + ext)
    _open_gop_file(open_gop, range(starts[1], starts[2]), container_format)
    vfr_pts = _vfr_file(vfr, range(starts[2], starts[3]), container_format)
    assert _has_leading_pictures(open_gop), "the open-GOP file should have leading B-frames after a keyframe"
    assert len(set(np.diff(vfr_pts))) > 10 and _is_reordered(vfr)

    numbers, times = _numbers(n), _times(n)
    store = imgstore.new_for_format(fmt, path=str(tmp_path / "s"), imgshape=COLOUR, chunksize=1000)
    for i in range(starts[0], starts[1]):
        store.add_image(_frame(i, COLOUR), numbers[i], times[i])
    for clip, (a, b) in ((open_gop, starts[1:3]), (vfr, starts[2:4])):
        store.insert_chunk(str(clip), numbers[a:b], times[a:b])
    for i in range(starts[3], starts[4]):
        store.add_image(_frame(i, COLOUR), numbers[i], times[i])
    store.close()

    with imgstore.new_for_filename(str(tmp_path / "s")) as store:
        assert store.chunks == [0, 1, 2, 3]
        frames = _read_sequential(store)
        _check_grid_sequence(frames, n)
        _check_random_access(store, frames, starts[1:-1], 300)


# ----------------------------------------------------------------------------------------------
# 3. the Motif fixture (yuv444p H.264 with B-frames, format 'libx264', no extension key)
# ----------------------------------------------------------------------------------------------
def test_motif_store_mp4_random_access(fixtures_dir):
    path = fixtures_dir / "store_mp4"
    assert _is_reordered(path / "000000.mp4")
    with imgstore.new_for_filename(str(path)) as store:
        frames = _read_sequential(store)
        assert len(frames) == store.frame_count == 179
        assert frames[0][0].shape == (512, 512)
        _check_random_access(store, frames, _chunk_starts(path), 200)


# ----------------------------------------------------------------------------------------------
# 4. grey values as upstream (OpenCV) reads them
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [{}, {"pix_fmt": "yuv420p"}], ids=["default", "yuv420p"])
def test_grey_avc1_matches_opencv(tmp_path, settings):
    shape = (48, 64)
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(10)]
    frames[0][:4] = 0
    frames[0][4:8] = 255  # the extremes must survive both readers alike
    frames += [_frame(i, shape) for i in range(10, 30)]
    path = _write_store(tmp_path / "s", "avc1/mp4", shape, len(frames), 20, frames=frames, **settings)
    _assert_grey_matches_opencv(path)


def test_grey_motif_store_mp4_matches_opencv(fixtures_dir):
    _assert_grey_matches_opencv(fixtures_dir / "store_mp4")


# ----------------------------------------------------------------------------------------------
# 5. encoder settings: honoured and validated
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", GOP_FORMATS)
def test_gop_gives_keyframes_every_n_frames(tmp_path, fmt):
    gop, n = 10, 50
    path = _write_store(tmp_path / "s", fmt, COLOUR, n, 100, gop=gop)
    assert _keyframe_positions(_chunk_paths(path)[0]) == list(range(0, n, gop))


@pytest.mark.parametrize("fmt", B_FRAME_FORMATS)
def test_pix_fmt_yuv444p_is_stored(tmp_path, fmt):
    path = _write_store(tmp_path / "s", fmt, COLOUR, 5, 100, pix_fmt="yuv444p")
    with av.open(_chunk_paths(path)[0]) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv444p"
    _check_grid_sequence(_read_all(path), 5)


@pytest.mark.parametrize("fmt", CRF_FORMATS)
def test_crf_changes_file_size(tmp_path, fmt):
    sizes = {}
    for crf in (5, 45):
        path = _write_store(tmp_path / str(crf), fmt, COLOUR, 10, 100, crf=crf)
        sizes[crf] = os.path.getsize(_chunk_paths(path)[0])
    assert sizes[5] > 1.5 * sizes[45], sizes


@pytest.mark.parametrize("fmt", B_FRAME_FORMATS)
def test_bframes_zero_means_no_reordering(tmp_path, fmt):
    for bframes in (0, 2):
        path = _write_store(tmp_path / str(bframes), fmt, GREY, 30, 100, bframes=bframes)
        assert _is_reordered(_chunk_paths(path)[0]) == (bframes > 0), f"bframes={bframes}"


UNKNOWN_SETTINGS = [
    ("ffv1/mkv", {"crf": 20}),
    ("ffv1/mkv", {"bframes": 2}),
    ("ffv1/mkv", {"pix_fmt": "yuv420p"}),
    ("mjpeg/avi", {"crf": 20}),
    ("mjpeg/avi", {"gop": 5}),
    ("av1/mkv", {"bframes": 2}),
    ("avc1/mp4", {"quality": 3}),
    ("avc1/mp4", {"pix_fmt": "rgb24"}),
]


UNKNOWN_IDS = [f"{fmt}-{next(iter(settings))}" for fmt, settings in UNKNOWN_SETTINGS]


@pytest.mark.parametrize(("fmt", "settings"), UNKNOWN_SETTINGS, ids=UNKNOWN_IDS)
def test_unknown_settings_refused_before_any_file(tmp_path, fmt, settings):
    if fmt not in VIDEO_FORMATS:
        pytest.skip(f"{fmt} is not writable here")
    path = tmp_path / "s"
    with pytest.raises(UnsupportedFormatError) as info:
        imgstore.new_for_format(fmt, path=str(path), imgshape=GREY, **settings)
    assert isinstance(info.value, ValueError)
    assert next(iter(settings)) in str(info.value) or str(next(iter(settings.values()))) in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize("fmt", ["avc1/mp4", "h264/mkv"])
def test_unknown_keyword_is_a_type_error_naming_the_settings(tmp_path, fmt):
    path = tmp_path / "s"
    with pytest.raises(TypeError, match=r"foo.*encoder settings are crf"):
        imgstore.new_for_format(fmt, path=str(path), imgshape=GREY, foo=1)
    assert not path.exists()


BAD_VALUES = [{"crf": "best"}, {"preset": "nonsense"}, {"bframes": -5}, {"threads": "many"}]


@pytest.mark.parametrize("settings", BAD_VALUES, ids=[next(iter(s)) for s in BAD_VALUES])
def test_bad_setting_values_refused_before_any_file(tmp_path, settings):
    path = tmp_path / "s"
    with pytest.raises(UnsupportedFormatError):
        imgstore.new_for_format("avc1/mp4", path=str(path), imgshape=GREY, **settings)
    assert not path.exists()


@pytest.mark.parametrize("settings", [{"crf": 20}, {"gop": 5}, {"pix_fmt": "gray"}])
def test_encoder_settings_refused_for_directory_format(tmp_path, settings):
    path = tmp_path / "s"
    with pytest.raises((TypeError, ImgStoreError)):
        imgstore.new_for_format("png", path=str(path), imgshape=GREY, **settings)
    assert not path.exists()


# ----------------------------------------------------------------------------------------------
# 6. odd sizes: truncated to even, frames are the top-left crop
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(33, 67), (33, 67, 3)], ids=["grey", "colour"])
@pytest.mark.parametrize("fmt", [f for f in VIDEO_FORMATS if f != "ffv1/mkv"])  # ffv1 keeps odd sizes
def test_odd_sizes_are_cropped_to_even(tmp_path, fmt, shape):
    even = (32, 66, *shape[2:])
    frames = [_frame(i, shape) for i in range(6)]
    # one encoder thread: x265's parallel rows are not deterministic, and the crop is compared
    # with a second encoding of the same pixels
    single = {"threads": 1} if fmt in ("avc1/mp4", "h264/mkv", "hevc/mp4") else {}
    path = _write_store(tmp_path / "odd", fmt, shape, 6, 4, frames=frames, **single)
    with open(os.path.join(path, "metadata.yaml")) as f:
        assert tuple(yaml.safe_load(f)["__store"]["imgshape"]) == even
    with imgstore.new_for_filename(path) as store:
        assert store.image_shape == even
        read = _read_sequential(store)
    assert [img.shape for img, _ in read] == [even] * 6
    assert [decode_grid(img) for img, _ in read] == list(range(6))
    crops = [f[:32, :66] for f in frames]
    # lossy: the same pixels as a store given the crop itself (the encoders are deterministic)
    twin = _write_store(tmp_path / "even", fmt, even, 6, 4, frames=crops, **single)
    expected = [img for img, _ in _read_all(twin)]
    for i, ((img, _), exp) in enumerate(zip(read, expected)):
        if fmt == "hevc/mp4":  # x265 is not bit-deterministic (twins differ by <7 levels; a 1-pixel shift: ~18)
            difference = np.abs(img.astype(int) - exp.astype(int)).mean()
            assert difference < 10, f"frame {i} is not the top-left crop (mean difference {difference:.1f})"
        else:
            assert np.array_equal(img, exp), f"frame {i} is not the top-left crop"


# ----------------------------------------------------------------------------------------------
# 7. ffv1/mkv is lossless
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16], ids=["uint8", "uint16"])
@SHAPES
def test_ffv1_is_pixel_exact(tmp_path, shape, dtype):
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, top, shape, dtype=dtype, endpoint=True) for _ in range(12)]
    frames[0].flat[:2] = (0, top)
    path = _write_store(tmp_path / "s", "ffv1/mkv", shape, 12, 5, dtype=dtype, frames=frames)
    with imgstore.new_for_filename(path) as store:
        assert store.lossless
        read = _read_sequential(store)
        assert len(read) == 12
        for i, ((img, _), original) in enumerate(zip(read, frames)):
            assert img.dtype == np.dtype(dtype) and np.array_equal(img, original), f"frame {i}"
        for i in (11, 3, 7, 0, 5):
            assert np.array_equal(store.get_image(None, frame_index=i)[0], frames[i]), f"frame {i}"


# ----------------------------------------------------------------------------------------------
# 8. upstream arguments, extract_only_frame, insert_chunk, empty
# ----------------------------------------------------------------------------------------------
def test_seek_and_gpu_id_are_accepted(tmp_path):
    path = _write_store(tmp_path / "s", "avc1/mp4", GREY, 30, 12, seek=False, gpu_id=0)
    for kwargs in ({"seek": False}, {"seek": True, "gpu_id": 0}, {"gpu_id": 1}):
        with imgstore.new_for_filename(path, **kwargs) as store:
            assert decode_grid(store.get_image(None, frame_index=17)[0]) == 17
            assert decode_grid(store.get_image(None, frame_index=3)[0]) == 3


def test_extract_only_frame_equals_get_image(tmp_path):
    path = _write_store(tmp_path / "s", "h264/mkv", COLOUR, 50, 20, bframes=2)
    with imgstore.new_for_filename(path) as store:
        for i in (0, 19, 20, 37, 49, 5):
            expected = store.get_image(None, frame_index=i)[0]
            assert np.array_equal(imgstore.extract_only_frame(path, i), expected), f"frame {i}"
    metadata = os.path.join(path, "metadata.yaml")
    assert decode_grid(imgstore.extract_only_frame(metadata, 42)) == 42


@pytest.mark.parametrize("move", [True, False], ids=["move", "copy"])
def test_insert_chunk_moves_or_keeps_the_source(tmp_path, move):
    source = _write_store(tmp_path / "src", "avc1/mp4", GREY, 30, 100, bframes=2)
    clip = tmp_path / "clip.mp4"
    shutil.copy(os.path.join(source, "000000.mp4"), clip)
    store = imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=GREY, chunksize=100)
    store.insert_chunk(str(clip), _numbers(30), _times(30), move=move)
    store.close()
    assert clip.exists() is not move
    assert os.path.isfile(tmp_path / "s" / "000000.mp4")
    frames = _read_all(tmp_path / "s")
    _check_grid_sequence(frames, 30)
    for (img, _), (expected, _) in zip(frames, _read_all(source)):
        assert np.array_equal(img, expected)


def test_empty_removes_chunk_files(tmp_path):
    path = tmp_path / "s"
    store = imgstore.new_for_format("avc1/mp4", path=str(path), imgshape=GREY, chunksize=20)
    for i in range(50):
        store.add_image(_frame(i, GREY), i, T0 + i)
    assert len(glob.glob(str(path / "0*.mp4"))) >= 2  # the open chunk's file may not exist yet
    store.empty()
    assert not glob.glob(str(path / "0*.mp4")) and not glob.glob(str(path / "0*.npz"))
    assert len(store) == 0
    for i in range(5):
        store.add_image(_frame(100 + i, GREY), 100 + i, T0 + i)
    store.close()
    frames = _read_all(path)
    assert [decode_grid(img) for img, _ in frames] == list(range(100, 105))
    assert [md[0] for _, md in frames] == list(range(100, 105))


# ----------------------------------------------------------------------------------------------
# 9. the OpenCV backend
# ----------------------------------------------------------------------------------------------
def _require_opencv_writer(fmt):
    ext = "." + fmt.split("/")[1]
    if not _opencv_can_write(OPENCV_FOURCC[fmt], ext):
        pytest.skip(f"this OpenCV build cannot write {fmt}")


@SHAPES
def test_opencv_written_mjpeg_read_by_pyav(tmp_path, shape):
    _require_opencv_writer("mjpeg/avi")
    path = _write_store(tmp_path / "s", "mjpeg/avi", shape, 30, 12, backend="opencv")
    with av.open(os.path.join(path, "000000.avi")) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
    frames = _read_all(path)
    _check_grid_sequence(frames, 30)
    assert frames[0][0].shape == shape
    with imgstore.new_for_filename(path, backend="av") as store:
        _check_random_access(store, frames, [12, 24], 60)
    opencv_frames = _read_all(path, backend="opencv")
    _assert_close(frames, opencv_frames, 3)


def _assert_close(frames, others, tolerance):
    assert [md for _, md in frames] == [md for _, md in others]
    for i, ((a, _), (b, _)) in enumerate(zip(frames, others)):
        assert a.shape == b.shape
        diff = int(np.abs(a.astype(np.int16) - b).max())
        assert diff <= tolerance, f"frame {i}: max abs diff {diff}"


@SHAPES
@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_pyav_written_store_read_by_opencv_backend(tmp_path, fmt, shape):
    path = _write_store(tmp_path / "s", fmt, shape, 24, 10)
    if not _opencv_can_read(_chunk_paths(path)[0]):
        pytest.skip(f"this OpenCV build cannot decode {fmt}")
    frames = _read_all(path)
    with imgstore.new_for_filename(path, backend="opencv") as store:
        opencv_frames = _read_sequential(store)
        _check_grid_sequence(opencv_frames, 24)
        for i in (17, 3, 22, 10, 9, 0):
            img, md = store.get_image(None, frame_index=i)
            assert decode_grid(img) == i and md == opencv_frames[i][1]
            assert np.array_equal(img, opencv_frames[i][0])
    if fmt == "mjpeg/avi":
        _assert_close(frames, opencv_frames, 3)


@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_opencv_backend_refuses_what_opencv_cannot_write(tmp_path, fmt):
    ext = "." + fmt.split("/")[1]
    writable = fmt in OPENCV_FOURCC and _opencv_can_write(OPENCV_FOURCC[fmt], ext)
    path = tmp_path / "s"
    if writable:
        assert get_codec(fmt, "VideoImgStore", "opencv").name == fmt
        _write_store(path, fmt, COLOUR, 2, 10, backend="opencv")
        _check_grid_sequence(_read_all(path), 2)
        return
    with pytest.raises(UnsupportedFormatError):
        get_codec(fmt, "VideoImgStore", "opencv")
    with pytest.raises(UnsupportedFormatError) as info:
        imgstore.new_for_format(fmt, path=str(path), imgshape=COLOUR, backend="opencv")
    message = str(info.value)
    assert fmt in message and "opencv" in message.lower(), message
    assert not path.exists()


@SHAPES
@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_listed_formats_write_their_first_frames(tmp_path, fmt, shape):
    path = _write_store(tmp_path / "s", fmt, shape, 2, 10)
    _check_grid_sequence(_read_all(path), 2)


# ----------------------------------------------------------------------------------------------
# 10. truncated and corrupt chunks
# ----------------------------------------------------------------------------------------------
TRUNCATED_FORMATS = [f for f in ("avc1/mp4", "h264/mkv", "mjpeg/avi", "ffv1/mkv") if f in VIDEO_FORMATS]


@pytest.mark.parametrize("fmt", TRUNCATED_FORMATS)
def test_truncated_chunk(tmp_path, fmt):
    """Every frame of a cut chunk reads as it was, or raises FrameReadError naming the chunk."""
    n, chunksize = 150, 60
    path = _write_store(tmp_path / "s", fmt, GREY, n, chunksize, **({"bframes": 2} if fmt in B_FRAME_FORMATS else {}))
    intact = _read_all(path)
    damaged = _chunk_paths(path)[1]
    with open(damaged, "rb") as f:
        content = f.read()
    for fraction in (0.5, 0.37, 0.63, 0.8):  # several cuts: where a cut falls in the GOP matters
        with open(damaged, "wb") as f:
            f.write(content[: int(len(content) * fraction)])
        with imgstore.new_for_filename(path) as store:  # the store still opens
            assert len(store) == n
            for i in [*range(0, chunksize, 7), chunksize - 1, *range(2 * chunksize, n, 9)]:
                _assert_same(store.get_image(None, frame_index=i), intact[i], f"cut at {fraction}: intact frame {i}")
            with pytest.raises(FrameReadError) as info:
                store.get_image(None, frame_index=2 * chunksize - 1)
            assert os.path.basename(damaged) in str(info.value)
            readable = _check_damaged_chunk(store, intact, range(chunksize, 2 * chunksize), damaged, fraction)
            # every format is written so that a cut file keeps its frames (mp4: fragmented)
            assert readable >= int(chunksize * fraction) - 30, "frames before the damage should read"
            _assert_same(store.get_image(None, frame_index=n - 1), intact[n - 1], "after the damaged chunk")


def _check_damaged_chunk(store, intact, positions, damaged, fraction):
    """Reads of a damaged chunk (each followed by the next frame): right frames or FrameReadError naming it."""
    where = {md: k for k, (_, md) in enumerate(intact)}
    readable = set()
    for i in positions:
        for read in (functools.partial(store.get_image, None, frame_index=i), store.get_next_image):
            try:
                got = read()
            except FrameReadError as exc:
                assert os.path.basename(damaged) in str(exc)
                break
            position = where[got[1]]
            _assert_same(got, intact[position], f"cut at {fraction}: damaged chunk, frame_index {position}")
            readable.add(position)
    return len(readable)


@pytest.mark.parametrize("fmt", TRUNCATED_FORMATS)
def test_chunk_damaged_in_the_middle(tmp_path, fmt):
    """Bytes overwritten mid-chunk: frames before the damage read exactly; later ones read or raise.

    Compressed video carries no checksums and decoders conceal damage, so a damaged frame may
    come back concealed rather than raise; what must hold is that nothing else fails: reads
    raise ``FrameReadError`` naming the chunk, or return a frame, and other chunks are intact.
    """
    n, chunksize = 120, 60
    path = _write_store(tmp_path / "s", fmt, GREY, n, chunksize)
    intact = _read_all(path)
    damaged = _chunk_paths(path)[0]
    with open(damaged, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        f.write(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with imgstore.new_for_filename(path) as store:
        for i in range(0, chunksize // 3):
            _assert_same(store.get_image(None, frame_index=i), intact[i], f"{fmt}: frame {i} before the damage")
        for i in range(chunksize // 3, chunksize):
            try:
                img, md = store.get_image(None, frame_index=i)
            except FrameReadError as exc:
                assert os.path.basename(damaged) in str(exc)
            else:
                assert md == intact[i][1] and img.shape == intact[i][0].shape
        _assert_same(store.get_image(None, frame_index=n - 1), intact[n - 1], "after the damaged chunk")


def test_garbage_chunk(tmp_path):
    path = _write_store(tmp_path / "s", "avc1/mp4", GREY, 50, 20)
    intact = _read_all(path)
    with open(os.path.join(path, "000001.mp4"), "wb") as f:
        f.write(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with imgstore.new_for_filename(path) as store:
        with pytest.raises(FrameReadError, match=r"000001\.mp4"):
            store.get_image(None, frame_index=25)
        _assert_same(store.get_image(None, frame_index=5), intact[5], "chunk 0")
        _assert_same(store.get_image(None, frame_index=45), intact[45], "chunk 2")


#: sizes below what some encoders take (x265: 16 rows and 64 columns; SVT-AV1: 4x4, and it
#: hangs on frames under ~30 pixels one way and over 64 the other)
TINY_SHAPES = [(2, 2), (2, 64), (16, 32), (10, 34), (32, 32, 3), (6, 66, 3), (100, 8)]


@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
@pytest.mark.parametrize("shape", TINY_SHAPES, ids=str)
def test_frames_of_any_size_are_written_and_read_back(tmp_path, fmt, shape):
    """Frames smaller than the encoder takes are padded for it and come back cropped to the store's size."""
    levels = [30 + 25 * i for i in range(8)]
    path = str(tmp_path / "tiny")
    with imgstore.new_for_format(fmt, path=path, imgshape=shape, chunksize=5) as store:
        for i, level in enumerate(levels):
            store.add_image(np.full(shape, level, np.uint8), i, T0 + i)
    with imgstore.new_for_filename(path) as store:
        assert store.image_shape == shape
        for i in (7, 0, 3, 4, 5):
            img, (number, _) = store.get_image(i)
            assert number == i and img.shape == shape
            assert abs(float(img.mean()) - levels[i]) < 6, (i, float(img.mean()))


@pytest.mark.parametrize("fmt", [f for f in ("hevc/mp4", "av1/mkv") if f in VIDEO_FORMATS])
def test_padding_is_cropped_from_the_right_and_bottom(tmp_path, fmt):
    """The picture is padded after its last column and row, so the store's frame is its top-left part."""
    shape = (12, 32)
    img = np.full(shape, 40, np.uint8)
    img[:, 16:] = 210
    img[6:, :] = 120
    path = str(tmp_path / "padded")
    with imgstore.new_for_format(fmt, path=path, imgshape=shape, chunksize=5, crf=0 if fmt == "hevc/mp4" else 10) as s:
        for i in range(3):
            s.add_image(img, i, T0 + i)
    coded = imgstore.codecs.get_codec(fmt).format.coded_size(shape)
    with av.open(os.path.join(path, "000000" + os.path.splitext(glob.glob(path + "/000000.*[4v]")[0])[1])) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.height, stream.codec_context.width) == coded != shape
    with imgstore.new_for_filename(path) as store:
        got = store.get_image(None, frame_index=1)[0].astype(int)
    assert np.abs(got - img).mean() < 6
