"""Extra data that ``imgstore.edit`` carries into edited stores beyond our own per-frame records:
Motif's ``NNNNNN.extra_data.json`` and ``NNNNNN.extra_data.h5`` files, and our records written
before the first frame. Every row is compared with the source's, value by value.

The rules (docs/editing.md): Motif's JSON rows follow the frame whose number they carry (their
``frame_index`` counted in the new store, as our records'); Motif's HDF5 rows, a signal sampled at
its own rate, follow their time into the destination chunk whose time span holds it; records
written before the first frame go to the piece that starts at the first frame.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pytest

import imgstore
from imgstore import edit
from imgstore.errors import ExtraDataError, MissingDependencyError
from imgstore.util import motif_extra_data_h5_attrs

from framecodes import make_grid_frame
from remote_servers import http_server  # noqa: F401 - a fixture
from upstream_oracle import run_script

T0 = 1_700_000_000.0
SHAPE = (24, 32)
CHUNK = 10
N = 35
#: the camera dropped frames 117 and 118 (between positions 16 and 17)
DROPPED = (117, 118)


def _number(i: int) -> int:
    return 100 + i + (2 if i >= 17 else 0)


def _time_of_number(number: int) -> float:
    return T0 + (number - 100) * 0.04


def _frames(n: int = N) -> List[tuple]:
    return [(i, _number(i), _time_of_number(_number(i))) for i in range(n)]


def make_store(path: Path, fmt: str = "npy", n: int = N, shift: float = 0.0, before: Sequence[dict] = (),
               records: bool = False) -> Path:  # fmt: skip
    """A store of ``n`` frames (chunks of CHUNK); ``before``: records added before the first frame;
    ``records``: a record after every third frame."""
    with imgstore.new_for_format(fmt, path=str(path), imgshape=SHAPE, chunksize=CHUNK) as store:
        for data in before:
            store.add_extra_data(**data)
        for i, number, when in _frames(n):
            store.add_image(make_grid_frame(number, SHAPE), number, when + shift)
            if records and i % 3 == 0:
                store.add_extra_data(sample=i, where=f"after {number}")
    return path


def _chunk_frames(n: int = N) -> Dict[int, List[tuple]]:
    chunks: Dict[int, List[tuple]] = {}
    for frame in _frames(n):
        chunks.setdefault(frame[0] // CHUNK, []).append(frame)
    return chunks


def add_motif_json(path: Path, n: int = N) -> None:
    """Motif's JSON extra data: two sensor rows for every frame, in the frame's chunk; chunk 0 also
    holds a row of before the first frame (frame number -1, which readers leave out)."""
    for chunk, frames in _chunk_frames(n).items():
        rows: List[Dict[str, Any]] = []
        if chunk == 0:
            rows.append({"frame_number": -1, "frame_index": -1, "frame_time": T0 - 1, "sensor_time": T0 - 1,
                         "lux": -1.0, "state": "idle"})  # fmt: skip
        for i, number, when in frames:
            for k in range(2):
                row = {"frame_number": number, "frame_index": i, "frame_time": when, "sensor_time": when + 0.01 * k}
                rows.append(dict(row, lux=number + k / 10, state=f"s{number}.{k}"))
        (path / f"{chunk:06d}.extra_data.json").write_text(json.dumps(rows))


def add_motif_h5(path: Path, n: int = N, columns: str = "temp, light", chunks: Optional[Sequence[int]] = None) -> None:
    """Motif's HDF5 extra data, sampled at 50 Hz beside a 25 Hz camera: two rows per frame, each
    tagged with the camera frame (number and time) they were taken at, plus rows at the frames the
    store lacks (117, 118, in chunk 1), a row at a frame before the recording (99, chunk 0) and
    three pre-allocated rows never filled (frame number -1)."""
    h5py = pytest.importorskip("h5py")
    for chunk, frames in _chunk_frames(n).items():
        if chunks is not None and chunk not in chunks:
            continue
        numbers = [number for _, number, _ in frames]
        if chunk == 0:
            numbers = [99, *numbers]
        if chunk == 1:
            numbers = sorted(numbers + list(DROPPED))
        samples = [(number, k) for number in numbers for k in range(2)] + [(-1, 0)] * 3
        camera = np.zeros(len(samples), dtype=[("frame_number", "<i8"), ("frame_time", "<f8")])
        camera["frame_number"] = [s[0] for s in samples]
        camera["frame_time"] = [_time_of_number(s[0]) if s[0] >= 0 else 0.0 for s in samples]
        names = [c.strip() for c in columns.split(",")]
        values = np.array([[s[0] * 10 + s[1] + c / 100 for s in samples] for c in range(len(names))])
        with h5py.File(path / f"{chunk:06d}.extra_data.h5", "w") as f:
            f["camera"] = camera
            f["sample_delay"] = np.array([0.02 * s[1] for s in samples])
            f["daq"] = values
            f["daq"].attrs["column_names"] = np.bytes_(columns.encode())
            f["daq"].attrs["samplerate"] = 50.0
            f.create_group("config").attrs["device"] = np.bytes_(b"phidget-1")
            f.attrs["datasets"] = np.bytes_(b"daq")  # as Motif writes them: bytes


def extra(path: Path) -> List[Dict[str, Any]]:
    with imgstore.new_for_filename(str(path)) as store:
        df = store.get_extra_data()
        return [] if df is None else df.to_dict("records")


def numbers_of(path: Path) -> List[int]:
    with imgstore.new_for_filename(str(path)) as store:
        return store.get_frame_metadata()["frame_number"]


def _same(got: List[dict], expected: List[dict]) -> None:
    """Row by row, every value equal; a NaN is a value a row lacks (as pandas fills absent columns)."""

    def present(row: dict) -> dict:
        return {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}

    assert [present(r) for r in got] == [present(r) for r in expected]


def _renumbered(rows: List[dict], kept_numbers: List[int]) -> List[dict]:
    """The source's rows of the kept frames, their frame_index counted in the new store."""
    return [
        dict(r, frame_index=kept_numbers.index(r["frame_number"])) for r in rows if r["frame_number"] in kept_numbers
    ]


# ----------------------------------------------------------------------------------------------
# Motif's JSON rows follow their frames
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def motif_json_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_store(tmp_path_factory.mktemp("json") / "motif")
    add_motif_json(path)
    return path


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 3, "end": 26, "by": "index"},  # chunks cut at both ends, copied
        {"start": 3, "end": 26, "by": "index", "copy": False},  # encoded again: chunks no longer line up
        {"start": 0, "end": 12, "by": "index"},  # from the first frame
        {"start": T0 + 0.5, "end": T0 + 1.1, "by": "time"},
    ],
    ids=["copied", "encoded", "from-start", "by-time"],
)
def test_trim_carries_motif_json_rows_of_the_kept_frames(motif_json_store: Path, tmp_path: Path, kwargs) -> None:
    edit.trim(motif_json_store, tmp_path / "t", **kwargs)
    kept = numbers_of(tmp_path / "t")
    assert kept and kept != numbers_of(motif_json_store)
    got = extra(tmp_path / "t")
    _same(got, _renumbered(extra(motif_json_store), kept))
    assert len(got) == 2 * len(kept)
    # the row of before the first frame (left out by readers) goes with the piece that starts there
    raw = json.loads((tmp_path / "t" / "000000.extra_data.json").read_text())
    assert [r["frame_number"] for r in raw if r["frame_number"] < 0] == ([-1] if kept[0] == 100 else [])


def test_split_then_join_gives_motif_json_rows_back(motif_json_store: Path, tmp_path: Path) -> None:
    pieces = edit.split(motif_json_store, tmp_path / "p", frames=12)
    for piece in pieces:
        _same(extra(Path(piece.path)), _renumbered(extra(motif_json_store), numbers_of(Path(piece.path))))
    edit.join([p.path for p in pieces], tmp_path / "j")
    _same(extra(tmp_path / "j"), extra(motif_json_store))
    assert json.loads((tmp_path / "j" / "000000.extra_data.json").read_text())[0]["frame_number"] == -1


def test_motif_json_rows_of_frames_the_store_lacks_are_reported(tmp_path: Path, caplog) -> None:
    src = make_store(tmp_path / "s", n=20)
    add_motif_json(src, n=20)
    path = src / "000001.extra_data.json"
    rows = json.loads(path.read_text())
    path.write_text(json.dumps([*rows, dict(rows[-1], frame_number=117, frame_index=17)]))
    with caplog.at_level(logging.WARNING):
        edit.trim(src, tmp_path / "t", 5, 19, by="index")
    assert f"{path}: 1 row for frames not in the store" in caplog.text
    _same(
        extra(tmp_path / "t"),
        _renumbered([r for r in extra(src) if r["frame_number"] != 117], numbers_of(tmp_path / "t")),
    )


def test_a_motif_json_row_without_a_usable_frame_number_is_refused(tmp_path: Path) -> None:
    src = make_store(tmp_path / "s", n=12)
    add_motif_json(src, n=12)
    path = src / "000001.extra_data.json"
    rows = json.loads(path.read_text())
    rows[1]["frame_number"] = "eleven"
    path.write_text(json.dumps(rows))
    with pytest.raises(ExtraDataError, match=rf"{path}: .*frame_number 'eleven' is not a number"):
        edit.trim(src, tmp_path / "t", 0, 11, by="index")
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()


def test_upstream_reads_motif_json_rows_of_an_edited_video_store(tmp_path: Path) -> None:
    src = make_store(tmp_path / "src", "mjpeg/avi", n=25)
    add_motif_json(src, n=25)
    edit.trim(src, tmp_path / "trim", 4, 21, by="index")
    dump = run_script("read_store.py", [str(tmp_path / "trim")])[str(tmp_path / "trim")]
    assert "error" not in dump, dump.get("error")
    ours = extra(tmp_path / "trim")
    assert [(r["frame_number"], r["frame_index"], r["state"]) for r in dump["extra_data"]["records"]] == [
        (r["frame_number"], r["frame_index"], r["state"]) for r in ours
    ]
    assert len(ours) == 2 * 18


# ----------------------------------------------------------------------------------------------
# Motif's HDF5 rows follow their time
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def motif_h5_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_store(tmp_path_factory.mktemp("h5") / "motif", "mjpeg/avi")
    add_motif_h5(path)
    return path


def _in_span(rows: List[dict], low: float, high: float) -> List[dict]:
    return [r for r in rows if low <= r["frame_time"] <= high]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 3, "end": 26, "by": "index"},
        {"start": 3, "end": 26, "by": "index", "copy": False},
        {"start": 110, "end": 125, "by": "number"},  # holds the dropped frames' samples
    ],
    ids=["copied", "encoded", "by-number"],
)
def test_trim_carries_the_motif_h5_samples_of_its_time_span(motif_h5_store: Path, tmp_path: Path, kwargs) -> None:
    edit.trim(motif_h5_store, tmp_path / "t", **kwargs)
    with imgstore.new_for_filename(str(tmp_path / "t")) as trimmed:
        low, high = trimmed.frame_time_min, trimmed.frame_time_max
        assert trimmed.get_extra_data_samplerate() == 50.0
        files = trimmed.find_extra_data_files()
    got = extra(tmp_path / "t")
    _same(got, _in_span(extra(motif_h5_store), low, high))
    assert {r["frame_number"] for r in got} >= ({117, 118} if kwargs["by"] == "number" else set())
    source_attrs = motif_extra_data_h5_attrs(str(motif_h5_store / "000000.extra_data.h5"))
    for path in files:
        assert path.endswith(".extra_data.h5")
        attrs = motif_extra_data_h5_attrs(path)
        assert attrs.keys() == source_attrs.keys() and attrs["_datasets"] == ["daq"]
        assert attrs["daq"] == source_attrs["daq"] and attrs["config"] == source_attrs["config"]


def test_split_then_join_gives_motif_h5_samples_back(motif_h5_store: Path, tmp_path: Path) -> None:
    whole = extra(motif_h5_store)
    pieces = edit.split(motif_h5_store, tmp_path / "p", frames=12)
    for k, piece in enumerate(pieces):
        with imgstore.new_for_filename(piece.path) as store:
            low, high = store.frame_time_min, store.frame_time_max
        # samples from before the first frame go with the first piece, as records do
        _same(extra(Path(piece.path)), _in_span(whole, -math.inf if k == 0 else low, high))
    edit.join([p.path for p in pieces], tmp_path / "j")
    _same(extra(tmp_path / "j"), whole)


def test_motif_h5_data_is_refused_without_h5py(motif_h5_store: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)  # `import h5py` now fails
    with pytest.raises(MissingDependencyError, match=r"extra_data\.h5.*pip install h5py"):
        edit.trim(motif_h5_store, tmp_path / "t", 0, 5, by="index")
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()


def test_motif_h5_files_that_disagree_are_refused_when_merged(tmp_path: Path) -> None:
    src = make_store(tmp_path / "s", n=20)
    add_motif_h5(src, n=20, chunks=[0])
    add_motif_h5(src, n=20, columns="temp", chunks=[1])
    with pytest.raises(ExtraDataError, match=r"000000\.extra_data\.h5.*000001\.extra_data\.h5"):
        edit.trim(src, tmp_path / "t", 5, 14, by="index", copy=False)  # one new chunk from both
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()


# ----------------------------------------------------------------------------------------------
# records written before the first frame
# ----------------------------------------------------------------------------------------------
BEFORE = [{"note": "armed", "level": 1}, {"note": "lights on", "level": 2}]


def _before_rows(rows: List[dict]) -> List[dict]:
    return [r for r in rows if r["frame_index"] == -1]


@pytest.mark.parametrize("fmt, copy", [("npy", True), ("npy", False), ("mjpeg/avi", True)])
def test_records_before_the_first_frame_go_with_the_piece_that_starts_there(tmp_path: Path, fmt, copy, caplog) -> None:
    src = make_store(tmp_path / "s", fmt, n=25, before=BEFORE, records=True)
    whole = extra(src)
    assert [r["note"] for r in _before_rows(whole)] == ["armed", "lights on"]
    with caplog.at_level(logging.WARNING):
        edit.trim(src, tmp_path / "head", 0, 14, by="index", copy=copy)
        edit.trim(src, tmp_path / "tail", 1, 24, by="index", copy=copy)
    assert "not carried" not in caplog.text
    head = extra(tmp_path / "head")
    _same(head, [r for r in whole if r["frame_index"] <= 14])  # frame_index -1 and NaN number and time kept
    assert _before_rows(extra(tmp_path / "tail")) == []
    _same(extra(tmp_path / "tail"), [dict(r, frame_index=r["frame_index"] - 1) for r in whole if r["frame_index"] >= 1])


def test_split_and_join_carry_records_before_the_first_frame(tmp_path: Path) -> None:
    src = make_store(tmp_path / "s", n=25, before=BEFORE, records=True)
    pieces = edit.split(src, tmp_path / "p", frames=10)
    assert [len(_before_rows(extra(Path(p.path)))) for p in pieces] == [2, 0, 0]
    edit.join([p.path for p in pieces], tmp_path / "j")
    _same(extra(tmp_path / "j"), extra(src))
    # a later store's records of before its first frame come after the frame before them in the
    # joined store, tagged with it as any record is
    later = make_store(tmp_path / "later", n=5, shift=60.0, before=[{"note": "second session"}])
    edit.join([src, later], tmp_path / "both")
    rows = extra(tmp_path / "both")
    second = [r for r in rows if r.get("note") == "second session"]
    assert len(second) == 1 and second[0]["frame_index"] == 24 and second[0]["frame_number"] == _number(24)
    assert [r["note"] for r in _before_rows(rows)] == ["armed", "lights on"]
    assert rows.index(second[0]) == len(rows) - 1 - sum(1 for r in extra(later) if r["frame_index"] >= 0)


def test_motif_h5_samples_without_camera_times_are_placed_by_their_frame_number(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    src = make_store(tmp_path / "s", n=20)
    add_motif_h5(src, n=20)
    for chunk in (0, 1):  # an older layout: the camera's numbers only
        with h5py.File(src / f"{chunk:06d}.extra_data.h5", "r+") as f:
            camera = np.asarray(f["camera"])
            del f["camera"]
            f["camera"] = camera[["frame_number"]].astype([("frame_number", "<i8")])
    edit.trim(src, tmp_path / "t", 5, 14, by="index", copy=False)
    kept = numbers_of(tmp_path / "t")
    # a sample of a frame the store lacks (117, 118) has no time, and goes nowhere
    assert extra(tmp_path / "t") == [r for r in extra(src) if r["frame_number"] in kept]


def test_motif_h5_samples_of_frames_whose_times_go_back_are_not_placed(tmp_path: Path, caplog) -> None:
    pytest.importorskip("h5py")
    src = tmp_path / "s"
    with imgstore.new_for_format("npy", path=str(src), imgshape=SHAPE, chunksize=CHUNK) as store:
        for i, number, when in _frames(20):
            store.add_image(make_grid_frame(number, SHAPE), number, when - (10.0 if i >= 15 else 0.0))
    add_motif_h5(src, n=20)
    with caplog.at_level(logging.WARNING):
        report = edit.trim(src, tmp_path / "t", 5, 19, by="index")
    assert f"{src}: frame times go back or are missing" in caplog.text
    assert report.frames == 15 and report.motif_rows == 0 and extra(tmp_path / "t") == []


def test_a_chunk_given_two_kinds_of_extra_data_is_reported(tmp_path: Path, caplog) -> None:
    src = make_store(tmp_path / "s", n=20, records=True)
    add_motif_json(src, n=20)
    (src / "000001.extra_data.json").unlink()  # chunk 1: our records only
    with caplog.at_level(logging.WARNING):
        edit.trim(src, tmp_path / "t", 5, 14, by="index", copy=False)  # one new chunk from both
    assert "chunk 0 of" in caplog.text and "readers see only Motif's JSON file" in caplog.text


def test_the_tool_reports_the_motif_rows_it_wrote(motif_json_store: Path, tmp_path: Path, capsys) -> None:
    from imgstore.apps import edit as tool

    assert tool.main(["trim", str(motif_json_store), str(tmp_path / "t"), "--start", "105", "--end", "110"]) == 0
    assert "6 frames (all copied), 0 extra-data records, 12 rows of Motif's extra data" in capsys.readouterr().err


def test_motif_extra_data_is_carried_from_a_store_at_a_url(http_server, tmp_path: Path) -> None:  # noqa: F811
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    root, url, _ = http_server
    add_motif_json(make_store(root / "json", n=20), n=20)
    add_motif_h5(make_store(root / "h5", n=20), n=20)
    for name in ("json", "h5"):
        edit.trim(f"{url}/{name}/", tmp_path / f"{name}-remote", 3, 16, by="index")
        edit.trim(root / name, tmp_path / f"{name}-local", 3, 16, by="index")
        got = extra(tmp_path / f"{name}-remote")
        assert len(got) > 20 and got == extra(tmp_path / f"{name}-local")
