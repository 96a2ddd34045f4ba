"""Cross-compatibility with upstream imgstore 0.4.0: stores one writes, the other must read.

Upstream runs only in the oracle interpreter (``upstream_oracle``), in a subprocess; our
``imgstore`` runs in this process. The same scripts (``upstream_scripts/write_store.py`` and
``read_store.py``) drive both sides: the oracle runs them with upstream, and this module loads
them by path and calls them with our package. Each side's work is batched: per test session
(per xdist worker) one oracle call writes every upstream store, one dumps them, and one dumps
every store we wrote.

For every case:

1. we write -> upstream reads: upstream's answers match what was written;
2. upstream writes -> we read: our answers match what was written;

and on both stores our reader answers as upstream's does, and our files are laid out as
upstream's. Known upstream quirk: it reads 16-bit png/tif frames back as uint8 holding the high
byte (``frame >> 8``); that is what upstream is checked against, while we must return the
stored 16-bit pixels.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

import imgstore
from imgstore.index.sealedfile import SEALED_INDEX_FILENAME

import framecodes
from upstream_fixtures import USER_METADATA as FIXTURE_USER_METADATA
from upstream_oracle import SCRIPTS_DIR, UPSTREAM_VERSION, run_script

if imgstore.__version__ == UPSTREAM_VERSION:  # upstream must only ever run in the oracle
    raise RuntimeError(f"the test process imported upstream imgstore ({imgstore.__file__}), not ours")

TOLERANCE = 3.0
T0 = 1_600_000_000.0
BAYER_CODES = {"cv_bayerbg": cv2.COLOR_BayerBG2BGR}
# __store keys whose values differ between any two stores (or writing machines)
VOLATILE_STORE_KEYS = {"uuid", "created_utc", "timezone_local"}

USER_METADATA = {"genotype": "wt", **FIXTURE_USER_METADATA}


@dataclass(frozen=True)
class Case:
    """One store to write on each side: format, frames, numbering, metadata and extra data."""

    name: str
    fmt: str
    shape: tuple[int, ...]
    dtype: str = "uint8"
    chunksize: int = 5
    count: int = 12
    numbers: str = "seq"
    int_times: bool = False
    encoding: str | None = None
    metadata: bool = False
    extra: bool = False

    @property
    def lossy(self) -> bool:
        """Whether the chunk format is lossy (jpg)."""
        return self.fmt.startswith("jpg")

    @property
    def upstream_reads_high_byte(self) -> bool:
        """Upstream's quirk: 16-bit png/tif frames come back as uint8 (the high byte)."""
        return self.dtype == "uint16" and self.fmt in ("png", "tif")


CASES = [
    Case("npy_gray_u8", "npy", (33, 47), chunksize=7, count=17, metadata=True, extra=True),
    Case("npy_color_u8", "npy", (30, 41, 3), count=10, numbers="offset", extra=True),
    Case("npy_gray_u16", "npy", (31, 45), "uint16", chunksize=4, count=9, numbers="gaps"),
    Case("npy_color_u16", "npy", (19, 27, 3), "uint16", chunksize=4, count=8, int_times=True),
    Case("png_gray_u8", "png", (33, 47), chunksize=6, count=13, numbers="gaps", extra=True),
    Case("png_color_u8", "png", (32, 48, 3), count=11, numbers="backwards", metadata=True),
    Case("png_gray_u16", "png", (25, 37), "uint16", chunksize=4, count=9),
    Case("png_color_u16", "png", (25, 37, 3), "uint16", chunksize=4, count=7, numbers="offset"),
    Case("jpg_gray_u8", "jpg", (48, 64), count=11, int_times=True),
    Case("jpg_color_u8", "jpg", (48, 64, 3), chunksize=4, count=9, numbers="wrap", metadata=True, extra=True),
    Case("tif_gray_u8", "tif", (29, 43), count=10, numbers="gaps"),
    Case("tif_color_u8", "tif", (29, 43, 3), chunksize=6, count=13, numbers="offset"),
    Case("tif_gray_u16", "tif", (29, 43), "uint16", count=11, numbers="backwards"),
    Case("bmp_gray_u8", "bmp", (33, 47), count=12),
    Case("bmp_color_u8", "bmp", (33, 47, 3), count=12, numbers="offset", extra=True),
    Case("ppm_gray_u8", "ppm", (31, 45), chunksize=4, count=9),
    Case("ppm_color_u8", "ppm", (31, 45, 3), chunksize=4, count=9, numbers="gaps"),
    Case("pgm_gray_u8", "pgm", (31, 45), chunksize=4, count=9, int_times=True),
    # colour into pgm: stored grey (OpenCV's weights), read back as three equal channels
    Case("pgm_color_u8", "pgm", (31, 45, 3), chunksize=4, count=9, numbers="gaps"),
    Case(
        "pngcolor_bayer",
        "png+color",
        (32, 48),
        count=12,
        numbers="gaps",
        encoding="cv_bayerbg",
        metadata=True,
        extra=True,
    ),
    Case("jpgcolor_u8", "jpg+color", (48, 64, 3), count=11, numbers="offset"),
]
CASE_IDS = [c.name for c in CASES]


# -- building the specs ------------------------------------------------------------------------


def frame_numbers(case: Case) -> list[int]:
    """Frame numbers: from 0, from 1000, with gaps, going backwards, or wrapping with a repeat."""
    n = case.count
    patterns = {
        "seq": lambda: list(range(n)),
        "offset": lambda: [1000 + i for i in range(n)],
        "gaps": lambda: [100 + 2 * i + 5 * (i // 3) for i in range(n)],
        "backwards": lambda: [50 - i for i in range(n)],
        "wrap": lambda: [9000, 9003, 9004, 0, 1, 1, 2, 5, *range(6, n)][:n],
    }
    return patterns[case.numbers]()


def frame_times(case: Case) -> list[float] | list[int]:
    """Frame times: irregular float seconds since the epoch, or whole seconds as ints."""
    if case.int_times:
        return [int(T0) + 2 * i for i in range(case.count)]
    return [T0 + 0.04 * i + 0.000123 * i * i for i in range(case.count)]


def extra_records(case: Case) -> list[dict]:
    """``add_extra_data`` calls: before the first frame, after the last frame of chunk 0,
    in the middle, and after the very last frame."""
    if not case.extra:
        return []
    cs, last = case.chunksize, case.count - 1
    return [
        {"after": -1, "data": {"label": "before-first", "temperature": 20.0}},
        {"after": 0, "data": {"temperature": 21.5, "label": "start"}},
        {"after": cs - 1, "data": {"label": "chunk-end", "xy": [1, 2]}},
        {"after": cs + 1, "data": {"temperature": 22.25, "nested": {"a": [1, {"b": None}]}}},
        {"after": last, "data": {"label": "ünïcode ✓", "flag": True}},
    ]


def make_spec(case: Case, path: Path) -> dict:
    """The write spec (see ``write_store.py``) of ``case`` at ``path``."""
    spec: dict[str, Any] = {
        "path": str(path),
        "format": case.fmt,
        "imgshape": list(case.shape),
        "imgdtype": case.dtype,
        "chunksize": case.chunksize,
        "frame_numbers": frame_numbers(case),
        "frame_times": frame_times(case),
        "noise": not case.lossy,
        "extra": extra_records(case),
    }
    if case.metadata:
        spec["metadata"] = USER_METADATA
    if case.encoding:
        spec["encoding"] = case.encoding
    return spec


# -- the shared scripts, and the two batches of stores ----------------------------------------


def load_script(name: str) -> ModuleType:
    """An ``upstream_scripts`` file loaded by path, to be run with our package."""
    path = SCRIPTS_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_imgstore_oracle_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRITER = load_script("write_store")
READER = load_script("read_store")


@dataclass
class Written:
    """A store written by one side: its spec, the writer's answer, upstream's dump of it."""

    spec: dict
    written: dict | None = None
    upstream_dump: dict | None = None
    error: str | None = None

    @property
    def path(self) -> str:
        """The store directory."""
        return self.spec["path"]

    def require(self) -> None:
        """Fail the test (with the original traceback) if writing or dumping failed."""
        if self.error is not None:
            pytest.fail(self.error, pytrace=False)


def _dump_with_upstream(stores: dict[str, Written]) -> None:
    """Dump every successfully written store with upstream, in one oracle call."""
    paths = [w.path for w in stores.values() if w.error is None]
    dumps = run_script("read_store.py", paths) if paths else {}
    for w in stores.values():
        dump = dumps.get(w.path)
        if dump is not None and "error" in dump:
            w.error = f"upstream could not read the store:\n{dump['error']}"
        w.upstream_dump = dump


@pytest.fixture(scope="session")
def upstream_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Written]:
    """Every case written by upstream (one oracle call) and dumped by upstream (another)."""
    root = tmp_path_factory.mktemp("upstream-written")
    stores = {c.name: Written(make_spec(c, root / c.name)) for c in CASES}
    results = run_script("write_store.py", [w.spec for w in stores.values()])
    for w in stores.values():
        w.written = results[w.path]
        if "error" in w.written:
            w.error = f"upstream could not write the store:\n{w.written['error']}"
    _dump_with_upstream(stores)
    return stores


@pytest.fixture(scope="session")
def our_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Written]:
    """Every case written by our package (in this process), then dumped by upstream."""
    root = tmp_path_factory.mktemp("ours-written")
    stores = {c.name: Written(make_spec(c, root / c.name)) for c in CASES}
    for w in stores.values():
        try:
            w.written = WRITER.write_store(imgstore, w.spec)
        except Exception:
            w.error = f"our imgstore could not write the store:\n{traceback.format_exc()}"
    _dump_with_upstream(stores)
    return stores


@functools.cache
def our_dump(path: str) -> dict:
    """Our reader's dump of the store at ``path`` (cached: several tests look at it)."""
    return READER.dump_store(imgstore, path)


# -- what a reader should answer ---------------------------------------------------------------


def stored_image(case: Case, frame: np.ndarray) -> np.ndarray:
    """The image a faithful reader returns for ``frame`` as given to ``add_image``."""
    img = frame
    if case.encoding:  # '+color' formats demosaic before writing
        img = cv2.cvtColor(img, BAYER_CODES[case.encoding])
    if case.fmt == "pgm" and img.ndim == 3:  # grey on disk, three equal channels when read
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return img  # ppm is always colour, but a grey store reads it back grey, unchanged


def expected_digests(case: Case, spec: dict, upstream: bool) -> list[dict]:
    """Digests of the images a reader must return, frame by frame (upstream's quirk if asked)."""
    images = [stored_image(case, f) for f in WRITER.make_frames(spec)]
    if upstream and case.upstream_reads_high_byte:
        images = [(img >> 8).astype(np.uint8) for img in images]
    return [framecodes.digest(img, lossy=case.lossy) for img in images]


def expected_image_shape(case: Case) -> list[int]:
    """``image_shape`` of the store: colour when an encoding was demosaiced before writing."""
    return [*case.shape[:2], 3] if case.encoding else list(case.shape)


def expected_extra(spec: dict) -> list[dict]:
    """The records ``get_extra_data()`` must hold, tagged with the frame they followed."""
    numbers, times = spec["frame_numbers"], spec["frame_times"]
    records = []
    for item in spec["extra"]:
        i = item["after"]
        tags = {"frame_time": math.nan, "frame_number": math.nan, "frame_index": i}
        if i >= 0:
            tags.update(frame_time=times[i], frame_number=numbers[i])
        records.append({**item["data"], **tags})
    return records


# -- comparing ---------------------------------------------------------------------------------


def assert_same(actual: Any, expected: Any, where: str = "") -> None:
    """Deep equality where NaN equals NaN and 3 equals 3.0; the message names the place."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and isinstance(actual, (int, float)) and math.isnan(expected):
        assert math.isnan(actual), f"{where}: {actual!r} != NaN"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def assert_read(read: dict, number: int, time: float, digest: dict, lossy: bool, where: str) -> None:
    """One image read returned the frame with ``number``, ``time`` and image ``digest``."""
    assert "raises" not in read, f"{where}: raised {read['raises'][0]}: {read['message']}"
    assert_same([read["frame_number"], read["frame_time"]], [number, time], where)
    assert read["attr_frame_number"] == number, f"{where}: store.frame_number"
    try:
        if lossy:  # against the frame before compression: the id and the mean
            assert read["digest"]["code"] == digest["code"], "frame code"
            assert abs(read["digest"]["mean"] - digest["mean"]) <= TOLERANCE, "mean"
        else:
            framecodes.compare_digest(read["digest"], digest, lossy=False, tolerance=TOLERANCE)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}: {read['digest']} vs {digest}") from None


def assert_raises(read: dict, exc_name: str, where: str) -> None:
    """A read failed with ``exc_name`` (or a subclass of it)."""
    assert exc_name in read.get("raises", []), f"{where}: expected {exc_name}, got {read}"


def check_props(dump: dict, case: Case, spec: dict, uuid: str) -> None:
    """The store's properties right after opening."""
    numbers, times, n = spec["frame_numbers"], spec["frame_times"], case.count
    expected = {
        "frame_count": n,
        "len": n,
        "frame_min": min(numbers),
        "frame_max": max(numbers),
        "frame_number": math.nan,
        "chunks": list(range(math.ceil(n / case.chunksize))),
        "image_shape": expected_image_shape(case),
        "uuid": uuid,
        "user_metadata": spec.get("metadata", {}),
        "frame_time_min": min(times),
        "frame_time_max": max(times),
        "has_extra_data": bool(spec["extra"]),
        "lossless": not case.lossy,
        "mode": "r",
    }
    got = {k: v for k, v in dump["props"].items() if k in expected}
    assert_same(got, expected, "props")
    assert dump["props"]["class_mro"][0] == "DirectoryImgStore"


def check_reads(dump: dict, case: Case, spec: dict, digests: list[dict]) -> None:
    """Every frame, read sequentially, by index, by number and by time; and failing reads."""
    numbers, times = spec["frame_numbers"], spec["frame_times"]
    lossy = case.lossy
    for i, (n, t, d) in enumerate(zip(numbers, times, digests)):
        assert_read(dump["sequential"][i], n, t, d, lossy, f"get_next_image #{i}")
        assert_read(dump["by_index"][i], n, t, d, lossy, f"get_image(None, frame_index={i})")
        j = times.index(t)
        assert_read(dump["nearest_time"][i], numbers[j], t, digests[j], lossy, f"get_nearest_image({t})")
    assert len(dump["sequential"]) == len(dump["by_index"]) == case.count
    for read in dump["by_number"]:
        j = numbers.index(read["query"])
        assert_read(read, numbers[j], times[j], digests[j], lossy, f"get_image({read['query']})")
    assert_raises(dump["sequential_end"], "EOFError", "get_next_image at the end")
    assert_raises(dump["missing_number"], "ValueError", "get_image(missing number)")
    assert_raises(dump["bad_index"], "ValueError", "get_image(None, frame_index=frame_count)")


def check_dump(dump: dict, case: Case, spec: dict, uuid: str, upstream: bool) -> None:
    """A reader's dump of the store written from ``spec`` holds exactly what was written."""
    check_props(dump, case, spec, uuid)
    assert_same(
        dump["frame_metadata"]["values"],
        {"frame_number": spec["frame_numbers"], "frame_time": spec["frame_times"]},
        "get_frame_metadata()",
    )
    extra = dump["extra_data"]
    if spec["extra"]:
        records = expected_extra(spec)
        columns = list(dict.fromkeys(k for r in records for k in r))
        assert sorted(extra["columns"]) == sorted(columns), "get_extra_data() columns"
        full = [{c: r.get(c, math.nan) for c in columns} for r in records]
        assert_same(extra["records"], full, "get_extra_data()")
    else:
        assert extra is None, "get_extra_data() of a store without extra data"
    check_reads(dump, case, spec, expected_digests(case, spec, upstream))


def compare_reads(ours: dict, theirs: dict, case: Case, where: str) -> None:
    """Our read answered as upstream's did (images: unless upstream's 16-bit quirk applies)."""
    if "raises" in theirs:
        assert theirs["raises"][0] in ours.get("raises", []), (
            f"{where}: upstream raised {theirs['raises'][0]}({theirs['message']!r}), we gave {ours}"
        )
        return
    assert "raises" not in ours, f"{where}: we raised {ours['raises'][0]}: {ours['message']}"
    for key in ("frame_number", "frame_time", "kinds", "attr_frame_number", "query"):
        assert_same(ours.get(key), theirs.get(key), f"{where}.{key}")
    if not case.upstream_reads_high_byte:
        try:
            framecodes.compare_digest(ours["digest"], theirs["digest"], case.lossy, TOLERANCE)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None


def compare_dumps(ours: dict, theirs: dict, case: Case) -> None:
    """Our reader answers every probe as upstream's does, on the same store."""
    props_ours = {k: v for k, v in ours["props"].items() if k != "class_mro"}
    props_theirs = {k: v for k, v in theirs["props"].items() if k != "class_mro"}
    assert_same(props_ours, props_theirs, "props")
    assert ours["props"]["class_mro"][0] == theirs["props"]["class_mro"][0]
    assert_same(ours["frame_metadata"], theirs["frame_metadata"], "get_frame_metadata()")
    assert_same(ours["extra_data"], theirs["extra_data"], "get_extra_data()")
    for key in ("sequential", "by_index", "by_number", "nearest_number", "nearest_time"):
        assert len(ours[key]) == len(theirs[key]), f"{key}: number of reads"
        for i, (a, b) in enumerate(zip(ours[key], theirs[key])):
            compare_reads(a, b, case, f"{key}[{i}]")
    for key in ("sequential_end", "missing_number", "bad_index"):
        compare_reads(ours[key], theirs[key], case, key)


# -- files on disk -----------------------------------------------------------------------------


def store_files(path: Path) -> list[str]:
    """Every file and folder of a store, relative to it, but the sealed index (ours only: upstream
    never looks at it; see test_sealed_index.py)."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.name != SEALED_INDEX_FILENAME)


def store_md(path: Path) -> dict:
    """``metadata.yaml`` without the keys that differ between any two stores."""
    md = yaml.safe_load((path / "metadata.yaml").read_text(encoding="utf-8"))
    md["__store"] = {k: v for k, v in md["__store"].items() if k not in VOLATILE_STORE_KEYS}
    return md


def npz_summary(path: Path) -> dict:
    """A chunk index: its keys (``pickled``: object arrays, e.g. upstream's ``encoding=None``)
    and its frame arrays as lists."""
    plain, pickled = [], []
    with np.load(path) as npz:
        for key in npz.files:
            try:
                npz[key]
            except ValueError:  # an object array; upstream's own reader never loads it
                pickled.append(key)
            else:
                plain.append(key)
        frames = {k: npz[k].tolist() for k in ("frame_number", "frame_time")}
    return {"keys": sorted(plain), "pickled": sorted(pickled), **frames}


def compare_npz(ours: Path, theirs: Path, where: str) -> None:
    """Our chunk index has upstream's keys (pickled ones optional) and the same frames."""
    a, b = npz_summary(ours), npz_summary(theirs)
    assert sorted(set(a["keys"]) - set(b["pickled"])) == b["keys"], f"{where}: keys"
    assert_same([a["frame_number"], a["frame_time"]], [b["frame_number"], b["frame_time"]], where)


# -- the tests ---------------------------------------------------------------------------------

CASE_PARAMS = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


@CASE_PARAMS
def test_upstream_reads_what_we_wrote(case: Case, our_stores: dict[str, Written]) -> None:
    """We write, upstream reads: it finds the frames, metadata and extra data we wrote."""
    w = our_stores[case.name]
    w.require()
    check_dump(w.upstream_dump, case, w.spec, w.written["uuid"], upstream=True)


@CASE_PARAMS
def test_we_read_what_upstream_wrote(case: Case, upstream_stores: dict[str, Written]) -> None:
    """Upstream writes, we read: we find the frames, metadata and extra data it wrote."""
    w = upstream_stores[case.name]
    w.require()
    ours_given = [framecodes.digest(f, lossy=False) for f in WRITER.make_frames(w.spec)]
    assert ours_given == w.written["written"], "the oracle generated other frames than we do"
    check_dump(our_dump(w.path), case, w.spec, w.written["uuid"], upstream=False)


@CASE_PARAMS
def test_we_answer_like_upstream_on_its_store(case: Case, upstream_stores: dict[str, Written]) -> None:
    """On a store upstream wrote, our reader answers every probe as upstream's does."""
    w = upstream_stores[case.name]
    w.require()
    compare_dumps(our_dump(w.path), w.upstream_dump, case)


@CASE_PARAMS
def test_we_answer_like_upstream_on_our_store(case: Case, our_stores: dict[str, Written]) -> None:
    """On a store we wrote, our reader answers every probe as upstream's does."""
    w = our_stores[case.name]
    w.require()
    compare_dumps(our_dump(w.path), w.upstream_dump, case)


@CASE_PARAMS
def test_our_files_are_laid_out_like_upstreams(
    case: Case, our_stores: dict[str, Written], upstream_stores: dict[str, Written]
) -> None:
    """Same files, same metadata.yaml (but uuid/time/zone), same index keys and frames, same
    extra-data JSON."""
    ours, theirs = our_stores[case.name], upstream_stores[case.name]
    ours.require()
    theirs.require()
    a, b = Path(ours.path), Path(theirs.path)
    assert store_files(a) == store_files(b), "files in the store"
    assert_same(store_md(a), store_md(b), "metadata.yaml")
    for rel in store_files(b):
        if rel.endswith(".npz"):
            compare_npz(a / rel, b / rel, rel)
        elif rel.endswith(".json"):
            ours_json = json.loads((a / rel).read_text(encoding="utf-8"))
            assert_same(ours_json, json.loads((b / rel).read_text(encoding="utf-8")), rel)
