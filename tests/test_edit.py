"""``imgstore.edit`` and ``imgstore-edit``: trim, split and join, checked frame by frame against the source.

Every frame draws its own number (``framecodes``), so a frame in an edited store is known to be
the right one by its pixels as well as its number and time. Where frames were copied rather than
encoded again, their files must be the source's, byte for byte.
"""

from __future__ import annotations

import filecmp
import glob
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import av
import numpy as np
import pytest

import imgstore
from imgstore import edit
from imgstore.errors import ImgStoreError

from framecodes import decode_grid, make_grid_frame
from toolrun import interrupt_once_started
from upstream_oracle import run_script

EDIT = str(Path(sys.executable).parent / "imgstore-edit")
T0 = 1_700_000_000.0
SHAPE = (48, 64)
N = 47
CHUNK = 10
#: formats and whether they keep pixels exactly
FORMATS = {"npy": True, "png": True, "jpg": False, "mjpeg/avi": False, "avc1/mp4": False}


def _number(i: int) -> int:
    return 500 + i + (3 if i >= 20 else 0)  # frames 520..522 were dropped


def _time(i: int) -> float:
    return T0 + i * 0.04


def make_source(path: Path, fmt: str, n: int = N, t0: float = T0) -> Path:
    with imgstore.new_for_format(
        fmt, path=str(path), imgshape=SHAPE, chunksize=CHUNK, metadata={"rig": "B", "animals": [1, 2]}
    ) as store:
        for i in range(n):
            store.add_image(make_grid_frame(_number(i), SHAPE), _number(i), t0 + i * 0.04)
            if i % 4 == 1:
                store.add_extra_data(sample=i, label=f"s{i}", values=[i, i * 2])
    return path


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def contents(path: Path) -> Dict[str, Any]:
    """What a store holds: numbers, times, frame codes, extra-data records, metadata (and the
    store opens without a warning: its sealed index, for one, fits it)."""
    warnings = _Warnings()
    logging.getLogger("imgstore").addHandler(warnings)
    try:
        found = _contents(path)
    finally:
        logging.getLogger("imgstore").removeHandler(warnings)
    assert not warnings.messages, warnings.messages
    return found


def _contents(path: Path) -> Dict[str, Any]:
    with imgstore.new_for_filename(str(path)) as store:
        md = store.get_frame_metadata()
        codes = [decode_grid(img) for img, _ in store]
        extra = store.get_extra_data()
        return {
            "numbers": md["frame_number"],
            "times": md["frame_time"],
            "codes": codes,
            "extra": [] if extra is None else extra.to_dict("records"),
            "user": store.user_metadata,
            "created": store.created,
            "format": (store.view.metadata.format, store.image_shape, store.view.metadata.imgdtype),
        }


@pytest.fixture(scope="module", params=list(FORMATS))
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("edit") / "source", request.param)


def _same_except_index(records: List[dict], expected: List[dict]) -> None:
    strip = [{k: v for k, v in r.items() if k != "frame_index"} for r in records]
    assert strip == [{k: v for k, v in r.items() if k != "frame_index"} for r in expected]


@pytest.mark.parametrize(
    "start, end, by", [(505, 531, "number"), (None, 519, "number"), (0, 9, "index"), (T0 + 0.5, T0 + 1.3, "time")]
)
def test_trim_keeps_the_chosen_frames_exactly(source: Path, tmp_path: Path, start, end, by) -> None:
    dest = tmp_path / "trimmed"
    report = edit.trim(source, dest, start, end, by=by)
    got, whole = contents(dest), contents(source)
    key = {"number": whole["numbers"], "time": whole["times"], "index": list(range(N))}[by]
    kept = [i for i, k in enumerate(key) if (start is None or k >= start) and (end is None or k <= end)]
    assert got["numbers"] == [whole["numbers"][i] for i in kept]
    assert got["times"] == [whole["times"][i] for i in kept]
    assert got["codes"] == got["numbers"]  # each frame shows its own number
    assert (got["user"], got["created"], got["format"]) == (whole["user"], whole["created"], whole["format"])
    # the extra data of the kept frames, their index counted in the new store
    expected = [r for r in whole["extra"] if r["frame_index"] in kept]
    _same_except_index(got["extra"], expected)
    assert [r["frame_index"] for r in got["extra"]] == [kept.index(r["frame_index"]) for r in expected]
    assert report.frames == len(kept) and report.copied + report.reencoded == len(kept)
    assert not os.path.exists(str(dest) + edit.PARTIAL_SUFFIX)


def test_copied_frames_are_the_sources_bytes(tmp_path: Path) -> None:
    """Image files are copied whatever is cut; a video chunk kept whole is copied, the cut ones encoded again."""
    for fmt in ("jpg", "mjpeg/avi"):
        src = make_source(tmp_path / fmt.replace("/", "-"), fmt)
        dest = tmp_path / (fmt.replace("/", "-") + "-trim")
        report = edit.trim(src, dest, 3, 25, by="index")  # chunk 0 cut, chunk 1 whole, chunk 2 cut
        if fmt == "jpg":
            assert (report.copied, report.reencoded) == (23, 0)
            sources = [os.path.join(src, f"{c:06d}", f"{i:06d}.jpg") for c in range(3) for i in range(CHUNK)][3:26]
            copies = sorted(glob.glob(os.path.join(dest, "*", "*.jpg")))
            assert len(copies) == 23 and all(filecmp.cmp(a, b, shallow=False) for a, b in zip(sources, copies))
        else:  # every MJPEG frame is a keyframe: every run is copied (remuxed), none encoded again
            assert (report.copied, report.reencoded) == (23, 0)
            whole = [p for p in glob.glob(os.path.join(dest, "*.avi")) if filecmp.cmp(p, src / "000001.avi", False)]
            assert len(whole) == 1
            assert _packets(dest) == _packets(src)[3:26]


def _packets(store: Path) -> List[bytes]:
    """The encoded frames of a video store, chunk after chunk, in decoding order."""
    out = []
    for chunk in sorted(glob.glob(os.path.join(store, "*.avi")) + glob.glob(os.path.join(store, "*.mp4"))):
        with av.open(chunk) as container:
            out += [bytes(p) for p in container.demux(video=0) if p.size]
    return out


@pytest.mark.parametrize("bframes", [0, 2])
def test_a_video_trim_encodes_again_only_the_gops_cut_at_its_ends(tmp_path: Path, bframes: int) -> None:
    """Keyframes every 10 frames: a trim of 13..86 copies 20..79 as they are (their packets, their
    pixels) and encodes only 13..19 and 80..86 again, with or without B-frames."""
    src = tmp_path / "src"
    with imgstore.new_for_format("avc1/mp4", path=str(src), imgshape=SHAPE, chunksize=100, gop=10,
                                 bframes=bframes) as store:  # fmt: skip
        for i in range(N * 2):
            store.add_image(make_grid_frame(i, SHAPE), i, _time(i))
    report = edit.trim(src, tmp_path / "t", 13, 86, by="index")
    assert (report.copied, report.reencoded) == (60, 14)
    with imgstore.new_for_filename(str(src)) as whole, imgstore.new_for_filename(str(tmp_path / "t")) as trimmed:
        got = [(img, md) for img, md in trimmed]
        assert [md[0] for _, md in got] == list(range(13, 87)) and [decode_grid(i) for i, _ in got] == list(
            range(13, 87)
        )
        for k in range(7, 67):  # the copied frames decode to the very pixels of the source
            assert np.array_equal(got[k][0], whole.get_image(None, frame_index=13 + k)[0])
        copied_chunk = trimmed.view.layout.chunk_path(1)
    with av.open(copied_chunk) as container:
        copied = sorted((p.pts, bytes(p)) for p in container.demux(video=0) if p.size)
    with av.open(str(src / "000000.mp4")) as container:
        originals = sorted((p.pts, bytes(p)) for p in container.demux(video=0) if p.size)
    assert [data for _, data in copied] == [data for _, data in originals[20:80]]


def test_every_nth_frame_of_an_intra_only_store_is_copied_and_upstream_reads_it(tmp_path: Path) -> None:
    """MJPEG frames each decode alone: every third frame is copied (remuxed, one step apart), none
    encoded again, and upstream (OpenCV) reads the copies frame by frame."""
    src = make_source(tmp_path / "src", "mjpeg/avi")
    chosen = np.arange(1, N, 3)
    with imgstore.new_for_filename(str(src)) as store:
        report = edit.write_store(str(tmp_path / "every"), [(store, chosen)])
    assert (report.copied, report.reencoded) == (len(chosen), 0)
    got, whole = contents(tmp_path / "every"), contents(src)
    assert got["numbers"] == [whole["numbers"][i] for i in chosen] == got["codes"]
    assert got["times"] == [whole["times"][i] for i in chosen]
    assert _packets(tmp_path / "every") == [_packets(src)[i] for i in chosen]
    dump = run_script("read_store.py", [str(tmp_path / "every")])[str(tmp_path / "every")]
    assert "error" not in dump, dump.get("error")
    reads = dump["by_index"]
    assert [r.get("frame_number") for r in reads] == got["numbers"]
    assert [r["digest"]["code"] for r in reads] == got["numbers"]  # the very frame, as OpenCV decodes it


def test_runs_of_a_selection_with_holes_are_copied_between_their_keyframes(tmp_path: Path) -> None:
    """Keyframes every 10 frames; frames 13..30 and 45..86 kept: 20..29 and 50..79 are copied,
    the rest (the GOPs cut at each run's ends) encoded again."""
    src = tmp_path / "src"
    with imgstore.new_for_format("avc1/mp4", path=str(src), imgshape=SHAPE, chunksize=100, gop=10,
                                 bframes=2) as store:  # fmt: skip
        for i in range(N * 2):
            store.add_image(make_grid_frame(i, SHAPE), i, _time(i))
    chosen = np.r_[13:31, 45:87]
    with imgstore.new_for_filename(str(src)) as store:
        report = edit.write_store(str(tmp_path / "holes"), [(store, chosen)])
    assert (report.copied, report.reencoded) == (40, 20)
    with imgstore.new_for_filename(str(src)) as whole, imgstore.new_for_filename(str(tmp_path / "holes")) as cut:
        got = [(img, md) for img, md in cut]
        assert [md[0] for _, md in got] == chosen.tolist() == [decode_grid(img) for img, _ in got]
        assert [md[1] for _, md in got] == [_time(i) for i in chosen]
        for k, position in enumerate(chosen.tolist()):
            if 20 <= position < 30 or 50 <= position < 80:  # copied: the very pixels of the source
                assert np.array_equal(got[k][0], whole.get_image(None, frame_index=position)[0]), position


def test_split_then_join_gives_the_store_back(source: Path, tmp_path: Path) -> None:
    pieces = edit.split(source, tmp_path / "pieces", frames=15)
    assert [p.frames for p in pieces] == [15, 15, 15, 2]
    assert [os.path.basename(p.path) for p in pieces] == ["source.000", "source.001", "source.002", "source.003"]
    joined = edit.join([p.path for p in reversed(pieces)], tmp_path / "joined")  # put back in time order
    assert joined.gaps == []
    got, whole = contents(tmp_path / "joined"), contents(source)
    assert got == whole  # numbers, times, pixels' codes, extra data (indexes too), metadata
    by_time = edit.split(source, tmp_path / "by-time", seconds=0.5)  # 12.5 frames per piece
    assert [p.frames for p in by_time] == [13, 12, 13, 9]


def test_join_refuses_overlap_reports_gaps_and_refuses_other_shapes(tmp_path: Path) -> None:
    a = make_source(tmp_path / "a", "npy", n=10)
    b = make_source(tmp_path / "b", "npy", n=10, t0=T0 + 0.2)  # starts before a ends
    with pytest.raises(ImgStoreError, match=r"b starts at .* before .*a ends"):
        edit.join([a, b], tmp_path / "ab")
    assert not os.path.exists(tmp_path / "ab")
    both = edit.join([a, b], tmp_path / "ab", allow_overlap=True)
    assert both.frames == 20
    late = make_source(tmp_path / "late", "npy", n=10, t0=T0 + 60)
    report = edit.join([a, late], tmp_path / "a-late")
    assert report.gaps == [(T0 + 9 * 0.04, T0 + 60)]
    with imgstore.new_for_format("npy", path=str(tmp_path / "big"), imgshape=(10, 10), chunksize=5) as big:
        big.add_image(np.zeros((10, 10), np.uint8), 0, T0 + 100)
    with pytest.raises(ImgStoreError, match=r"big holds 10x10 uint8 frames, .*a 48x64 uint8: resize one first"):
        edit.join([a, tmp_path / "big"], tmp_path / "mixed")
    with pytest.raises(ImgStoreError, match="already exists"):
        edit.join([a, late], tmp_path / "a-late")


def test_upstream_reads_an_edited_store(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", "mjpeg/avi")
    edit.trim(src, tmp_path / "trim", 4, 33, by="index")
    dump = run_script("read_store.py", [str(tmp_path / "trim")])[str(tmp_path / "trim")]
    assert "error" not in dump, dump.get("error")
    ours = contents(tmp_path / "trim")
    assert dump["frame_metadata"]["values"]["frame_number"] == ours["numbers"]
    assert dump["frame_metadata"]["values"]["frame_time"] == ours["times"]
    assert [r["label"] for r in dump["extra_data"]["records"]] == [r["label"] for r in ours["extra"]]


# ----------------------------------------------------------------------------------------------
# the tool
# ----------------------------------------------------------------------------------------------
def _tool(*args: Any) -> subprocess.CompletedProcess:
    return subprocess.run([EDIT, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_tool_trims_splits_and_joins(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", "png")
    out = _tool("trim", src, tmp_path / "t", "--start", 510, "--end", 530, "-q")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert contents(tmp_path / "t")["numbers"] == [n for n in map(_number, range(N)) if 510 <= n <= 530]
    out = _tool("trim", src, tmp_path / "small", "--crop", "8,0,32,24", "--resize", "0.5", "-q")
    assert out.returncode == 0, out.stderr
    with imgstore.new_for_filename(str(tmp_path / "small")) as small:
        assert small.image_shape == (12, 16) and small.frame_count == N
        assert small.user_metadata["imgstore_transforms"] == ["crop 8,0,32,24", "resize 0.5"]
    out = _tool("split", src, tmp_path / "parts", "--duration", "1s")
    assert out.returncode == 0, out.stderr
    assert "wrote " in out.stderr and len(os.listdir(tmp_path / "parts")) == 2
    parts = sorted(str(p) for p in (tmp_path / "parts").iterdir())
    out = _tool("join", *parts, tmp_path / "j", "-q")
    assert out.returncode == 0, out.stderr
    assert contents(tmp_path / "j") == contents(src)


@pytest.mark.parametrize(
    "args, message",
    [
        (["trim", "{src}", "{dest}", "--start", "9000"], "{src}: no frames selected (12 frames in the store)"),
        (["trim", "{src}", "{dest}", "--start", "530", "--end", "510"], "{src}: --start 530 is after --end 510"),
        (["trim", "{src}", "{src}"], "{src}: already exists; choose a new destination"),
        (["trim", "{tmp}/nothing", "{dest}"], "{tmp}/nothing"),
        (["join", "{src}", "{src}", "{dest}"], "before {src} ends"),
    ],
)
def test_the_tools_refusals_are_one_line(tmp_path: Path, args: list, message: str) -> None:
    src = make_source(tmp_path / "src", "npy", n=12)
    names = {"src": str(src), "dest": str(tmp_path / "dest"), "tmp": str(tmp_path)}
    out = _tool(*[a.format(**names) for a in args])
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(**names) in lines[0], out.stderr
    assert not os.path.exists(tmp_path / "dest") and not os.path.exists(str(tmp_path / "dest") + ".partial")


def test_ctrl_c_leaves_no_destination(tmp_path: Path) -> None:
    src = tmp_path / "long"
    with imgstore.new_for_format("avc1/mp4", path=str(src), imgshape=(240, 320), chunksize=100000) as store:
        frame = make_grid_frame(1, (240, 320))
        for i in range(1500):
            store.add_image(frame, i, T0 + i / 25)
    dest = tmp_path / "cut"
    command = [EDIT, "trim", str(src), str(dest), "--every", "2"]  # every other frame: all encoded again
    returncode, stderr = interrupt_once_started(command, Path(str(dest) + edit.PARTIAL_SUFFIX), settle=0.3)
    assert returncode == 130, stderr
    assert sorted(os.listdir(tmp_path)) == ["long"], json.dumps(sorted(os.listdir(tmp_path)))


# ----------------------------------------------------------------------------------------------
# what an adversarial review found (each failed before its fix)
# ----------------------------------------------------------------------------------------------
def test_a_sensor_encoding_is_kept_and_its_raw_frames_copied(tmp_path: Path) -> None:
    src = tmp_path / "bayer"
    raw = [np.random.default_rng(i).integers(0, 255, (32, 32), dtype=np.uint8, endpoint=True) for i in range(8)]
    with imgstore.new_for_format("png", path=str(src), imgshape=(32, 32), chunksize=4, encoding="cv_bayerbg") as s:
        for i, img in enumerate(raw):
            s.add_image(img, i, _time(i))
    for fmt_copy, dest in ((True, tmp_path / "copied"), (False, tmp_path / "encoded")):
        report = edit.trim(src, dest, 1, 6, copy=fmt_copy)
        assert report.copied == (6 if fmt_copy else 0)
        with imgstore.new_for_filename(str(dest)) as out, imgstore.new_for_filename(str(src)) as whole:
            assert out.view.metadata.encoding == "cv_bayerbg" and out.view.metadata.imgshape == (32, 32)
            out.disable_decoding()
            assert all(np.array_equal(img, raw[1 + k]) for k, (img, _) in enumerate(out))  # the raw mosaic
            assert np.array_equal(out.get_image(3)[0], raw[3]) and whole.image_shape == out.image_shape


def test_destinations_that_end_in_a_slash_or_lie_inside_the_source(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", "npy", n=12)
    edit.trim(src, str(tmp_path / "out") + "/", 500, 505)
    assert contents(tmp_path / "out")["numbers"] == list(range(500, 506))
    with pytest.raises(ImgStoreError, match=r"inside the store .* it is made from"):
        edit.trim(src, src / "000009", 500, 505)
    assert sorted(os.listdir(src)) == ["000000", "000001", "imgstore-sealed-index", "metadata.yaml"]


def test_split_by_duration_puts_boundary_frames_in_the_next_piece(tmp_path: Path) -> None:
    with imgstore.new_for_format("npy", path=str(tmp_path / "10hz"), imgshape=(4, 4), chunksize=4) as store:
        for i in range(10):
            store.add_image(np.zeros((4, 4), np.uint8), i, T0 + i / 10)
    pieces = edit.split(tmp_path / "10hz", tmp_path / "p", seconds=0.1)
    assert [(os.path.basename(p.path), p.frames) for p in pieces] == [(f"10hz.{k:03d}", 1) for k in range(10)]
    with pytest.raises(ImgStoreError, match=r"at least 0\.001 s"):
        edit.split(tmp_path / "10hz", tmp_path / "q", seconds=1e-300)
    assert [p.frames for p in edit.split(tmp_path / "10hz", tmp_path / "r", frames=np.int64(4))] == [4, 4, 2]


def test_join_refuses_other_formats_and_trim_counts_negative_indexes_from_the_end(tmp_path: Path) -> None:
    a = make_source(tmp_path / "a", "png", n=5)
    b = make_source(tmp_path / "b", "npy", n=5, t0=T0 + 10)
    with pytest.raises(ImgStoreError, match=r"b is npy, .*a png: convert one first"):
        edit.join([a, b], tmp_path / "ab")
    assert edit.trim(a, tmp_path / "last-two", -2, None, by="index").frames == 2


def test_an_unfinished_chunk_is_encoded_again_not_copied(tmp_path: Path) -> None:
    src = tmp_path / "live"
    writer = imgstore.new_for_format("mjpeg/avi", path=str(src), imgshape=(32, 48), chunksize=5)
    try:
        for i in range(8):
            writer.add_image(make_grid_frame(i, (32, 48)), i, T0 + i)
        writer.flush()  # chunk 1 (frames 5-7) is being written: no index, an AVI without its own index
        report = edit.trim(src, tmp_path / "t", 0, 7)
    finally:
        writer.close()
    assert (report.copied, report.reencoded) == (5, 3)
    with av.open(str(tmp_path / "t" / "000001.avi")) as container:
        assert container.streams.video[0].frames == 3  # a finished file, its frames counted


def test_a_second_ctrl_c_does_not_stop_the_clean_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    partial = tmp_path / "dest.partial"
    partial.mkdir()
    (partial / "x").write_text("half")
    real_rmtree, calls = edit.shutil.rmtree, []

    def interrupted_once(path: Any, ignore_errors: bool = False) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(edit.shutil, "rmtree", interrupted_once)
    edit._remove(str(partial))
    assert len(calls) == 2 and not partial.exists()
