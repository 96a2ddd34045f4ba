"""The fixture stores of upstream imgstore 0.4.0, made at test time: a clone needs nothing else.

Eleven stores, each beside a ``<name>.expected.json`` of upstream's answers, in the layout and
schema of ``../shared/fixtures`` (``tests/compat/test_fixtures.py`` replays both sets the same way):
ten written by upstream through the oracle (``upstream_scripts/fixture_stores.py``), and
``store_mp4``, the Motif recording that ships in upstream's wheel. The H.264 chunks that
upstream cannot encode with pip's OpenCV are encoded here with PyAV and handed to upstream's
``insert_chunk``.

The set is built once and kept in the oracle's cache (beside its venv), in a folder named by a
hash of everything that makes it; a manifest of every file's hash is checked on each use, so a
store changed by accident is rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from framecodes import make_grid_frame
from upstream_oracle import SCRIPTS_DIR, TESTS_DIR, UPSTREAM_VERSION, cache_dir, locked, run_script

SCRIPT = "fixture_stores.py"
MANIFEST = "manifest.json"
T0 = 1_600_000_000.0

USER_METADATA = {
    "experiment": {
        "name": "Fliegen-Experiment üöä ß",
        "operator": "张伟",
        "arena": {"diameter_mm": 92.5, "n_flies": 12, "tags": ["a", "b", "été"]},
    },
    "notes": "line one\nline two ✓",
    "nothing": None,
    "ratio": 0.125,
    "offset": -3,
    "enabled": True,
    "übersicht": {"α": 1, "empty_dict": {}, "empty_list": []},  # noqa: RUF001 - a Greek key on purpose
}


def _times(count: int, start: float) -> list:
    """Irregular frame times: about 25 fps with a small drift, so nearest-time reads have work."""
    return [start + 0.04 * i + 0.0000123 * i * i for i in range(count)]


def _spec(
    name: str, fmt: str, shape: tuple, numbers: list, chunksize: int, zone: str, description: str, **more: object
) -> dict:
    spec = {
        "name": name,
        "format": fmt,
        "imgshape": list(shape),
        "imgdtype": "uint8",
        "chunksize": chunksize,
        "frame_numbers": numbers,
        "frame_times": _times(len(numbers), T0 + 1000.0 * (len(name) % 17)),
        "noise": fmt not in ("jpg", "mjpeg/avi", "avc1/mp4"),
        "zone": zone,
        "description": description,
    }
    spec.update(more)
    return spec


def store_specs() -> list:
    """What each store pins down (the names are those of ``../shared/fixtures``, the contents ours)."""
    return [
        _spec(
            "dir_npy_gray_basic",
            "npy",
            (33, 47),
            list(range(17)),
            7,
            "Europe/Vienna",
            "npy 33x47 grey uint8, chunksize 7, 17 frames (chunks 7+7+3), numbers 0..16",
            metadata={"genotype": "wt", "fps": 25, "camera": {"serial": 12345}},
        ),
        _spec(
            "dir_png_uint16_gray",
            "png",
            (40, 52),
            list(range(1000, 1015)),
            10,
            "America/New_York",
            "png 16-bit grey: upstream reads the frames back as uint8; the answer is the 16-bit frame",
            imgdtype="uint16",
            metadata={"bitdepth": 12},
        ),
        _spec(
            "dir_pngcolor_bayer",
            "png+color",
            (32, 48),
            [0, 1, 2, 4, 5, 9, 10, 11, 20, 21, 22, 40],
            10,
            "Europe/Vienna",
            "png+color, encoding cv_bayerbg: mosaics demosaiced before writing; numbers with gaps",
            encoding="cv_bayerbg",
            metadata={"sensor": "BayerRG8"},
        ),
        _spec(
            "dir_jpg_color_extra",
            "jpg",
            (48, 64, 3),
            list(range(100, 113)),
            5,
            "Asia/Tokyo",
            "jpg colour; extra data after frames 0, 3, 4 (the last of chunk 0), 7 and 12; unicode metadata",
            metadata=USER_METADATA,
            extra=[
                {"after": 0, "data": {"temperature": 21.5, "label": "start"}},
                {"after": 3, "data": {"temperature": 21.75}},
                {"after": 4, "data": {"label": "chunk-end", "xy": [1, 2]}},
                {"after": 7, "data": {"temperature": 22.25, "nested": {"a": [1, {"b": None}]}}},
                {"after": 12, "data": {"label": "ünïcode ✓", "flag": True}},
            ],
        ),
        _spec(
            "video_mjpeg_odd_color",
            "mjpeg/avi",
            (33, 47, 3),
            list(range(50, 68)),
            7,
            "Europe/Vienna",
            "mjpeg/avi 33x47x3 asked for, 32x46x3 written and recorded; chunks 7+7+4",
            metadata={"rig": "A"},
        ),
        _spec(
            "video_avc1_insert_chunk",
            "avc1/mp4",
            (48, 64, 3),
            list(range(25)),
            10,
            "Europe/London",
            "avc1/mp4 assembled with insert_chunk from three H.264 files (10+10+5 frames); time = 1000*number",
            frame_times=[1000.0 * n for n in range(25)],
            metadata={"assembled": True},
        ),
        _spec(
            "dir_old_format_20190314_101530",
            "npy",
            (30, 40),
            list(range(10)),
            6,
            "Europe/Vienna",
            "old metadata (no created_utc, timezone_local, uuid): created from the name's stamp in 'timezone'",
            old_format={"timezone": "America/New_York"},
        ),
        _spec(
            "dir_npy_empty_trailing_chunk",
            "npy",
            (24, 32, 3),
            list(range(10, 30, 2)),
            5,
            "Europe/Vienna",
            "10 frames in chunks of 5: an empty trailing chunk holds the extra data of the last frame",
            extra=[{"after": 2, "data": {"event": "door"}}, {"after": 9, "data": {"event": "end"}}],
        ),
        _spec(
            "dir_png_reindexed",
            "png",
            (32, 40),
            [3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            4,
            "Europe/Vienna",
            "numbers 3,4,0..8 with extra data, then upstream's reindex(): -2,-1,0..8",
            extra=[
                {"after": 0, "data": {"ofn": 3}},
                {"after": 5, "data": {"ofn": 3}},
                {"after": 10, "data": {"ofn": 8}},
            ],
            reindex=True,
        ),
        _spec(
            "dir_npy_nonmonotonic_wrap",
            "npy",
            (32, 32),
            [6050, 6055, 6056, 0, 1, 2, 2, 3, 7],
            2,
            "Europe/Vienna",
            "numbers that wrap and repeat, a repeated time: nearest-lookup ties",
            frame_times=[T0 + 8000.0 + 0.5 * i for i in (0, 1, 2, 3, 4, 5, 5, 6, 7)],
        ),
    ]


def _key() -> str:
    """A hash of everything that decides the stores and answers."""
    h = hashlib.sha256()
    h.update(f"{UPSTREAM_VERSION} {sys.version_info[:2]}".encode())
    h.update(json.dumps(store_specs(), sort_keys=True).encode())
    for path in (SCRIPTS_DIR / SCRIPT, SCRIPTS_DIR / "write_store.py", TESTS_DIR / "framecodes.py", Path(__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _file_hashes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _intact(root: Path) -> bool:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest == _file_hashes(root)


def _write_h264_chunks(folder: Path, spec: dict) -> list:
    """Three H.264 files (10, 10 and 5 frames, no B-frames, GOP 10) of the spec's frames."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    chunks = []
    numbers, times = spec["frame_numbers"], spec["frame_times"]
    h, w = spec["imgshape"][:2]
    for k, (start, stop) in enumerate(((0, 10), (10, 20), (20, 25))):
        path = folder / f"chunk{k}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"bframes": "0", "g": "10", "crf": "18"}
            for i in range(start, stop):
                frame = av.VideoFrame.from_ndarray(make_grid_frame(i, tuple(spec["imgshape"]), noise=False), "bgr24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        chunks.append({"video": str(path), "frame_numbers": numbers[start:stop], "frame_times": times[start:stop]})
    return chunks


def _build(target: Path) -> None:
    """Write the set into a fresh folder beside ``target``, then move it into place."""
    work = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        specs = []
        for spec in store_specs():
            spec = dict(spec, path=str(work / spec["name"]))
            if spec["format"] == "avc1/mp4":
                spec["chunks"] = _write_h264_chunks(work / "_chunk_videos", spec)
            specs.append(spec)
        run_script(SCRIPT, str(work), specs)
        shutil.rmtree(work / "_chunk_videos", ignore_errors=True)
        (work / MANIFEST).write_text(json.dumps(_file_hashes(work), indent=1), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def generated_fixtures_dir() -> Path:
    """The folder of the generated fixture stores, built (once, under a lock) when missing or changed."""
    target = cache_dir() / f"fixtures-{_key()}"
    if _intact(target):
        return target
    with locked(cache_dir() / "fixtures.lock"):
        if not _intact(target):
            _build(target)
    return target


def fixture_names() -> list:
    """The names of the generated stores (known without building them)."""
    return sorted([spec["name"] for spec in store_specs()] + ["store_mp4"])
