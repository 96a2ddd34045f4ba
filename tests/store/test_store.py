"""Store behaviour real client code relies on: defaults, properties, extra data and maintenance."""

from __future__ import annotations

import datetime
import json
import math
import os
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml

import imgstore
from imgstore.align import StoreAligner
from imgstore.constants import STORE_INDEX_FILENAME, STORE_LOCK_FILENAME
from imgstore.errors import FrameArgumentError, FrameNotFoundError, ImgStoreError
from imgstore.index import ImgStoreIndex

from framecodes import decode_grid, make_grid_frame

T0 = 1_600_000_000.0


def _store(path, n=10, chunksize=4, numbers=None, fmt="npy", shape=(24, 32), **kwargs):
    numbers = list(range(n)) if numbers is None else numbers
    store = imgstore.new_for_format(fmt, path=str(path), imgshape=shape, chunksize=chunksize, **kwargs)
    for i, number in enumerate(numbers):
        store.add_image(make_grid_frame(i, shape, np.uint8), number, T0 + i)
    store.close()
    return str(path)


def _read_all(store):
    out = []
    while True:
        try:
            out.append(store.get_next_image())
        except EOFError:
            return out


def test_defaults_imgdtype_and_chunksize(tmp_path):
    store = imgstore.new_for_format("png", path=str(tmp_path / "s"), imgshape=(8, 8))
    store.add_image(np.zeros((8, 8)), 0, 0)  # float64 zeros into a uint8 store: a lossless cast
    store.close()
    with open(tmp_path / "s" / "metadata.yaml") as f:
        smd = yaml.safe_load(f)["__store"]
    assert (smd["imgdtype"], smd["chunksize"], smd["class"], smd["version"]) == ("uint8", 200, "DirectoryImgStore", 2)
    assert len(smd["uuid"]) == 32 and smd["timezone_local"]


def test_len_bool_and_properties_while_writing(tmp_path):
    store = imgstore.new_for_format("npy", path=str(tmp_path / "s"), imgshape=(4, 4), chunksize=3)
    assert len(store) == 0 and not store and math.isnan(store.frame_number)
    for i, number in enumerate([5, 3, 9, 4]):
        store.add_image(np.zeros((4, 4), np.uint8), np.int32(number), T0 + i)  # int frame_time too
    assert len(store) == 4 and bool(store)
    assert (store.frame_min, store.frame_max, store.frame_number, store.frame_time) == (3.0, 9.0, 4, T0 + 3)
    assert store.chunks == [0]  # completed chunks
    assert store.duration == 3.0 and store.mode == "w"
    store.close()
    store.close()  # idempotent
    assert not os.path.exists(tmp_path / "s" / STORE_LOCK_FILENAME)


def test_integer_frame_time_is_stored_as_float(tmp_path):
    path = tmp_path / "s"
    with imgstore.new_for_format("npy", path=str(path), imgshape=(4, 4)) as store:
        store.add_image(np.zeros((4, 4), np.uint8), 0, 1_600_000_000)
    reader = imgstore.new_for_filename(str(path))
    assert reader.get_frame_metadata() == {"frame_number": [0], "frame_time": [1_600_000_000.0]}
    _, (number, time) = reader.get_next_image()
    assert type(number) is int and type(time) is float


def test_read_properties_and_types(tmp_path):
    store = imgstore.new_for_filename(_store(tmp_path / "s", numbers=[4, 5, 6, 10, 11, 12, 13, 20, 21, 22]))
    assert math.isnan(store.frame_number)
    assert (store.frame_count, len(store), store.chunks) == (10, 10, [0, 1, 2])
    assert (store.frame_min, store.frame_max) == (4.0, 22.0)
    assert (store.frame_time_min, store.frame_time_max, store.duration) == (T0, T0 + 9, 9.0)
    assert store.image_shape == (24, 32) and store.lossless and not store.has_extra_data
    assert store.filename == str(tmp_path / "s") and store.full_path.endswith("metadata.yaml")
    img, (number, time) = store.get_image(np.int64(11))
    assert (number, time, store.frame_number, decode_grid(img)) == (11, T0 + 4, 11, 4)
    assert store.get_next_framenumber() == 12
    assert store.get_image(15, exact_only=False)[1][0] == 13  # tie 13/20 -> nearest is 13 (distance 2)
    assert store.get_nearest_image(T0 + 7.4)[1][0] == 20


def test_empty_trailing_chunk_like_upstream(tmp_path):
    path = _store(tmp_path / "s", n=8, chunksize=4)
    assert sorted(os.listdir(path)) == ["000000", "000001", "000002", "imgstore-sealed-index", "metadata.yaml"]
    assert os.listdir(os.path.join(path, "000002")) == ["index.npz"]
    store = imgstore.new_for_filename(path)
    assert store.chunks == [0, 1] and store.frame_count == 8


def test_created_and_timezone(tmp_path):
    before = datetime.datetime.now(datetime.timezone.utc)
    store = imgstore.new_for_filename(_store(tmp_path / "s", n=1))
    created, tz = store.created
    assert created.tzinfo is datetime.timezone.utc
    assert before - datetime.timedelta(seconds=1) <= created <= datetime.datetime.now(datetime.timezone.utc)
    assert isinstance(tz, ZoneInfo)
    dt = store.convert_frame_time_to_datetime(T0, tz=ZoneInfo("Asia/Tokyo"))
    assert dt.isoformat() == "2020-09-13T21:26:40+09:00"
    assert store.convert_frame_time_to_datetime(T0).tzinfo == tz


def _make_old_store(directory, user_md):
    path = _store(directory, n=2)
    md_path = os.path.join(path, "metadata.yaml")
    with open(md_path) as f:
        md = yaml.safe_load(f)
    for key in ("created_utc", "timezone_local", "uuid"):
        del md["__store"][key]
    md.update(user_md)
    with open(md_path, "w") as f:
        yaml.safe_dump(md, f)
    return path, md_path


def test_old_store_created_from_name_stamp_in_user_zone(tmp_path):
    path, _ = _make_old_store(tmp_path / "flies_20190314_101530", {"timezone": "America/New_York"})
    created, tz = imgstore.new_for_filename(path).created
    assert created.isoformat() == "2019-03-14T14:15:30+00:00" and str(tz) == "America/New_York"
    assert imgstore.new_for_filename(path).uuid is None


def test_old_store_created_from_mtime(tmp_path):
    path, md_path = _make_old_store(tmp_path / "nostamp", {"timezone": "Asia/Tokyo"})
    os.utime(md_path, (1_500_000_000, 1_500_000_000))
    created, tz = imgstore.new_for_filename(path).created
    assert created == datetime.datetime.fromtimestamp(1_500_000_000, datetime.timezone.utc)
    assert str(tz) == "Asia/Tokyo"


def test_user_metadata_round_trip(tmp_path):
    metadata = {
        "genotype": "wt",
        "camera": {"serial": np.int64(123), "gain": np.float32(1.5), "roi": (0, 0, 640, 480)},
        "notes": "Fliegen üöä ✓ 张伟",
        "empty": {},
        "nothing": None,
        "array": np.arange(3),
    }
    path = _store(tmp_path / "s", n=1, metadata=metadata)
    md = imgstore.new_for_filename(path).user_metadata
    assert md == {
        "genotype": "wt",
        "camera": {"serial": 123, "gain": 1.5, "roi": [0, 0, 640, 480]},
        "notes": "Fliegen üöä ✓ 张伟",
        "empty": {},
        "nothing": None,
        "array": [0, 1, 2],
    }
    assert metadata["camera"]["roi"] == (0, 0, 640, 480), "the caller's dict is not modified"
    assert not [p for p in os.listdir(path) if p.endswith(".tmp")]


def test_extra_data_before_first_frame_and_across_chunks(tmp_path):
    path = tmp_path / "s"
    with imgstore.new_for_format("npy", path=str(path), imgshape=(4, 4), chunksize=2) as store:
        store.add_extra_data(started=True)
        for i in range(4):
            store.add_image(np.zeros((4, 4), np.uint8), 10 + i, T0 + i)
            store.add_extra_data(reading=np.float64(i / 2), tags={"a", "b"} if i == 3 else None)
    df = imgstore.new_for_filename(str(path)).get_extra_data()
    assert list(df["frame_index"]) == [-1, 0, 1, 2, 3]
    assert math.isnan(df["frame_number"][0]) and math.isnan(df["frame_time"][0])
    assert list(df["frame_number"][1:]) == [10, 11, 12, 13]
    assert list(df["reading"][1:]) == [0.0, 0.5, 1.0, 1.5]
    # the record after the last frame of chunk 0 lands in chunk 1's file, as upstream writes it
    with open(path / "000001" / "index.extra.json") as f:
        assert [r["frame_index"] for r in json.load(f)] == [1, 2]


def test_reindex_on_uneven_chunks(tmp_path):
    path = _store(tmp_path / "s", numbers=[3, 4, 0, 1, 2, 3, 4, 5, 6], chunksize=4)
    store = imgstore.new_for_filename(path)
    store.save_index()
    store.reindex()
    assert store.get_frame_metadata()["frame_number"] == [-2, -1, 0, 1, 2, 3, 4, 5, 6]
    assert not os.path.exists(os.path.join(path, STORE_INDEX_FILENAME)), "stale saved index removed"
    assert store.get_image(-2)[1][0] == -2
    with np.load(os.path.join(path, "000000", "index.npz")) as npz:
        assert list(npz["_frame_number_before_reindex"]) == [3, 4, 0, 1]
    assert imgstore.new_for_filename(path).get_frame_metadata()["frame_number"][:3] == [-2, -1, 0]


def test_reindex_needs_exactly_one_zero(tmp_path):
    store = imgstore.new_for_filename(_store(tmp_path / "s", numbers=[0, 1, 0]))
    with pytest.raises(ValueError, match="2 frame_number=0"):
        store.reindex()


def test_empty_deletes_frames_and_restarts(tmp_path):
    path = tmp_path / "s"
    store = imgstore.new_for_format("npy", path=str(path), imgshape=(4, 4), chunksize=2)
    for i in range(5):
        store.add_image(np.full((4, 4), 1, np.uint8), i, T0 + i)
    store.add_extra_data(x=1)
    store.empty()
    assert len(store) == 0 and math.isnan(store.frame_number)
    store.add_image(np.full((4, 4), 7, np.uint8), 100, T0)
    store.close()
    reader = imgstore.new_for_filename(str(path))
    assert reader.get_frame_metadata() == {"frame_number": [100], "frame_time": [T0]}
    assert reader.get_next_image()[0][0, 0] == 7 and reader.get_extra_data() is None


def test_save_index_and_open_with_it(tmp_path):
    path = _store(tmp_path / "s", n=9, numbers=[5, 6, 7, 1, 2, 3, 8, 9, 10])
    with imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(4, 4), chunksize=2) as w:
        w.add_image(np.zeros((4, 4), np.uint8), 0, T0)
        with pytest.raises(ValueError, match="save_index"):
            w.save_index()
    w.close(save_index=True)  # already closed: a no-op
    store = imgstore.new_for_filename(path)
    store.save_index()
    index = ImgStoreIndex.new_from_file(os.path.join(path, STORE_INDEX_FILENAME))
    fast = imgstore.new_for_filename(path, index=index)
    assert fast.get_frame_metadata() == store.get_frame_metadata()
    np.testing.assert_array_equal(fast.get_image(2)[0], store.get_image(2)[0])
    with pytest.raises(TypeError):
        imgstore.new_for_filename(path, index="not an index")


def test_close_save_index_when_writing(tmp_path):
    path = tmp_path / "s"
    store = imgstore.new_for_format("npy", path=str(path), imgshape=(4, 4), chunksize=2)
    for i in range(3):
        store.add_image(np.zeros((4, 4), np.uint8), i, T0 + i)
    store.close(save_index=True)
    index = ImgStoreIndex.new_from_file(str(path / STORE_INDEX_FILENAME))
    assert index.get_all_metadata()["frame_number"] == [0, 1, 2]


def test_paths_basedir_and_metadata_file(tmp_path):
    path = _store(tmp_path / "s", n=2)
    for store in (
        imgstore.new_for_filename(path),
        imgstore.new_for_filename(os.path.join(path, "metadata.yaml")),
        imgstore.new_for_filename(None, basedir=path),
        imgstore.new_for_format("npy", path, mode="r"),
        imgstore.stores.DirectoryImgStore(basedir=path, mode="r"),
    ):
        assert store.frame_count == 2 and isinstance(store, imgstore.DirectoryImgStore)


def test_compat_arguments_are_accepted(tmp_path):
    store = imgstore.new_for_format(
        "npy", path=str(tmp_path / "s"), imgshape=(4, 4), videosize=(4, 4), seek=True, gpu_id=0
    )
    store.close()
    imgstore.new_for_filename(str(tmp_path / "s"), seek=False, gpu_id=None).close()


def test_store_aligner_policies(tmp_path):
    a = imgstore.new_for_filename(_store(tmp_path / "a", numbers=[1, 2, 3, 5]))
    b = imgstore.new_for_filename(_store(tmp_path / "b", numbers=[2, 3, 4, 5]))
    aligner = StoreAligner(a, b)
    assert list(aligner.extract_common_frames(StoreAligner.MISSING_POLICY_DROP)) == [2, 3, 5]
    assert [fn for fn, _ in aligner.iter_imgs()] == [2, 3, 5]
    assert list(aligner.extract_common_frames(StoreAligner.MISSING_POLICY_BLACK)) == [1, 2, 3, 4, 5]
    rows = list(aligner.iter_imgs(return_times=True))
    fn, imgs, times = rows[0]
    assert fn == 1 and not imgs[1].any() and math.isnan(times[1]) and decode_grid(imgs[0]) == 0
    aligner.extract_common_frames(StoreAligner.MISSING_POLICY_HOLD)
    held = dict(aligner.iter_imgs())
    assert decode_grid(held[4][0]) == decode_grid(held[3][0]) == 2  # store a holds frame 3 for 4


def test_extra_data_from_motif_json_and_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = _store(tmp_path / "s", n=4, chunksize=2)
    records = [
        {"frame_number": -1, "frame_index": 5},
        {"frame_number": 1, "frame_index": 1, "sensor_time": 2.0},
        {"frame_number": 0, "frame_index": 0, "sensor_time": 1.0},
    ]
    with open(os.path.join(path, "000000.extra_data.json"), "w") as f:
        json.dump(records, f)
    with h5py.File(os.path.join(path, "000001.extra_data.h5"), "w") as f:
        camera = np.zeros(3, dtype=[("frame_number", "i8"), ("frame_time", "f8")])
        camera["frame_number"] = [2, 3, -1]  # the last row was pre-allocated but not recorded
        f["camera"] = camera
        f["sample_delay"] = np.array([0.1, 0.2, 0.0])
        f["daq"] = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])
        f["daq"].attrs["column_names"] = "temp, light"  # h5py 3 stores and returns str
        f.attrs["datasets"] = np.bytes_(b"daq")  # older Motif versions wrote bytes
    store = imgstore.new_for_filename(path)
    assert store.find_extra_data_files() == [
        os.path.join(path, "000000.extra_data.json"),
        os.path.join(path, "000001.extra_data.h5"),
    ]
    df = store.get_extra_data()
    assert list(df["frame_number"]) == [0, 1, 2, 3]
    assert list(df["temp"][2:]) == [1.0, 2.0] and list(df["sample_delay"][2:]) == [0.1, 0.2]
    assert isinstance(df, pd.DataFrame)


def test_write_refused_on_read_store_and_read_refused_on_write_store(tmp_path):
    path = _store(tmp_path / "s", n=2)
    reader = imgstore.new_for_filename(path)
    with pytest.raises(ImgStoreError, match="open for reading"):
        reader.add_image(np.zeros((24, 32), np.uint8), 9, T0)
    writer = imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(4, 4))
    with pytest.raises(ImgStoreError, match="open for writing"):
        writer.get_next_image()
    writer.close()


def test_reads_old_yaml_chunk_indexes(tmp_path):
    path = _store(tmp_path / "s", numbers=[7, 8, 9, 10, 11], chunksize=3)
    for chunk in ("000000", "000001"):
        npz_path = os.path.join(path, chunk, "index.npz")
        with np.load(npz_path) as npz:
            data = {"frame_number": npz["frame_number"].tolist(), "frame_time": npz["frame_time"].tolist()}
        os.unlink(npz_path)
        with open(os.path.join(path, chunk, "index.yaml"), "w") as f:
            yaml.safe_dump(data, f)
    store = imgstore.new_for_filename(path)
    assert store.get_frame_metadata()["frame_number"] == [7, 8, 9, 10, 11]
    assert decode_grid(store.get_image(10)[0]) == 3


def test_bpk_without_bloscpack(tmp_path, monkeypatch):
    from imgstore.codecs import bpk
    from imgstore.errors import MissingDependencyError

    monkeypatch.setattr(bpk, "_import_bloscpack", lambda: None)
    assert "bpk" not in imgstore.get_supported_formats()
    with pytest.raises(MissingDependencyError, match="pip install bloscpack") as excinfo:
        imgstore.new_for_format("bpk", path=str(tmp_path / "s"), imgshape=(4, 4))
    assert isinstance(excinfo.value, ImportError) and isinstance(excinfo.value, ValueError)


def test_nan_and_missing_frame_times_are_stored(tmp_path):
    path = tmp_path / "s"
    with imgstore.new_for_format("npy", path=str(path), imgshape=(4, 4)) as store:
        store.add_image(np.zeros((4, 4), np.uint8), 0, float("nan"))
        store.add_image(np.zeros((4, 4), np.uint8), 1, None)
        store.add_image(np.zeros((4, 4), np.uint8), 2, T0)
    reader = imgstore.new_for_filename(str(path))
    times = reader.get_frame_metadata()["frame_time"]
    assert math.isnan(times[0]) and math.isnan(times[1]) and times[2] == T0
    assert reader.get_nearest_image(T0 + 5)[1][0] == 2


def test_non_numeric_frame_numbers_are_value_and_type_errors(tmp_path):
    from imgstore.errors import FrameArgumentError

    store = imgstore.new_for_filename(_store(tmp_path / "s", n=2))
    for call in (lambda: store.get_image("7"), lambda: store.get_nearest_image("soon")):
        with pytest.raises(FrameArgumentError) as excinfo:
            call()
        assert isinstance(excinfo.value, ValueError) and isinstance(excinfo.value, TypeError)


def test_created_kept_when_only_the_zone_is_unknown(tmp_path, caplog):
    path = _store(tmp_path / "s", n=1)
    md_path = os.path.join(path, "metadata.yaml")
    with open(md_path) as f:
        md = yaml.safe_load(f)
    md["__store"]["created_utc"] = "2021-06-01T10:00:00"
    md["__store"]["timezone_local"] = "Mars/Olympus_Mons"
    md["timezone"] = "Europe/Berlin"
    with open(md_path, "w") as f:
        yaml.safe_dump(md, f)
    created, tz = imgstore.new_for_filename(path).created
    assert created.isoformat() == "2021-06-01T10:00:00+00:00" and str(tz) == "Europe/Berlin"
    assert "Mars/Olympus_Mons" in caplog.text


def test_frame_metadata_while_writing_includes_the_open_chunk(tmp_path, caplog):
    store = imgstore.new_for_format("npy", path=str(tmp_path / "s"), imgshape=(4, 4), chunksize=3)
    for i in range(5):
        store.add_image(np.zeros((4, 4), np.uint8), 10 + i, T0 + i)
    assert store.get_frame_metadata() == {
        "frame_number": [10, 11, 12, 13, 14],
        "frame_time": [T0 + i for i in range(5)],
    }
    assert "skipping" not in caplog.text
    store.close()


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi"])
def test_an_empty_store_spans_no_time(tmp_path, fmt):
    """No frames: frame numbers are NaN but the time range is 0.0, writing and reading, as upstream's index."""
    store = imgstore.new_for_format(fmt, path=str(tmp_path / "s"), imgshape=(16, 16))
    assert (store.frame_time_min, store.frame_time_max, store.duration) == (0.0, 0.0, 0.0)
    assert math.isnan(store.frame_min) and math.isnan(store.frame_max)
    store.close()
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert (reader.frame_time_min, reader.frame_time_max, reader.duration, reader.chunks) == (0.0, 0.0, 0.0, [])
    assert math.isnan(reader.frame_min) and math.isnan(reader.frame_max)


def test_upstream_private_chunk_bookkeeping(tmp_path):
    """``_chunk_n_and_chunk_paths``, ``_iter_chunk_n_and_chunk_paths``, ``_chunk_n`` and ``_index`` as
    upstream's own tests and client code use them."""
    path = _store(tmp_path / "s", n=10, chunksize=4)
    store = imgstore.new_for_filename(path)
    bases = [(n, os.path.join(path, f"{n:06d}", "index")) for n in (0, 1, 2)]
    assert store._chunk_n_and_chunk_paths == bases and list(store._iter_chunk_n_and_chunk_paths()) == bases
    assert store._chunk_n == 0
    store.get_image(None, frame_index=9)
    assert store._chunk_n == 2 and store._get_chunk_metadata(2)["frame_number"] == [8, 9]
    given = imgstore.new_for_filename(path, index=store._index)
    assert given._index is store._index and given._chunk_n_and_chunk_paths is None
    assert list(given._iter_chunk_n_and_chunk_paths()) == bases and given._chunk_n_and_chunk_paths == bases
    writer = imgstore.new_for_format("npy", path=str(tmp_path / "w"), imgshape=(4, 4), chunksize=2)
    assert writer._chunk_n_and_chunk_paths is None and writer._chunk_n == 0
    for i in range(5):
        writer.add_image(np.zeros((4, 4), np.uint8), i, T0 + i)
    assert writer._chunk_n == 2
    writer.close()


def test_format_given_twice_takes_the_first(tmp_path):
    """``new_for_format(fmt, format=...)``, common in scripts that build keyword dicts: ``fmt`` wins."""
    kwargs = {"basedir": str(tmp_path / "s"), "mode": "w", "imgshape": (8, 8), "imgdtype": np.uint8, "format": "png"}
    imgstore.new_for_format("npy", **kwargs).close()
    assert os.listdir(tmp_path / "s" / "000000") == ["index.npz"]
    assert yaml.safe_load((tmp_path / "s" / "metadata.yaml").read_text())["__store"]["format"] == "npy"


def test_upstream_package_names_reached_after_import(tmp_path):
    """``imgstore.apps``/``ui``/``font`` are loaded on first use; ``imgstore.test`` runs the self-test."""
    assert imgstore.test is imgstore.main_test
    assert imgstore.apps.main_test is not None and imgstore.ui.new_window and imgstore.font.FontRenderer
    assert imgstore.main_test(["--format", "npy", "-q"]) == 0
    with pytest.raises(AttributeError):
        imgstore.no_such_name  # noqa: B018


#: calls that add_image must refuse before writing anything: (frame number, time, image maker)
_REJECTED = {
    "number over 64 bits": (2**63, T0, None),
    "boolean number": (True, T0, None),
    "fractional number": (3.5, T0, None),
    "text number": ("7", T0, None),
    "text time": (7, "noon", None),
    "boolean time": (7, True, None),
    "wrong shape": (7, T0, lambda shape: np.zeros((shape[0] + 1, *shape[1:]), np.uint8)),
    "lossy dtype": (7, T0, lambda shape: np.full(shape, 300, np.int32)),
}


@pytest.mark.parametrize("fmt", [f for f in imgstore.get_supported_formats() if "+color" not in f])
def test_a_refused_add_image_leaves_the_store_as_it_was(tmp_path, fmt):
    """Frames 0-4, then every kind of bad call, then frames 5-9: each reads back where it belongs."""
    shape = (48, 64)
    store = imgstore.new_for_format(fmt, path=str(tmp_path / "s"), imgshape=shape, chunksize=7)
    for i in range(5):
        store.add_image(make_grid_frame(i, shape), i, T0 + i)
    for name, (number, time, bad_image) in _REJECTED.items():
        img = bad_image(shape) if bad_image else make_grid_frame(999, shape)
        with pytest.raises(ImgStoreError):
            store.add_image(img, number, time)
        assert store.frame_count == 5, name
    for i in range(5, 10):
        store.add_image(make_grid_frame(i, shape), i, T0 + i)
    store.close()
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert reader.get_frame_metadata() == {"frame_number": list(range(10)), "frame_time": [T0 + i for i in range(10)]}
    for i in range(10):
        img, (number, _) = reader.get_image(None, frame_index=i)
        assert number == i and decode_grid(img) == i


def test_nan_matches_no_frame_and_timeouts_are_checked(tmp_path):
    store = imgstore.new_for_filename(_store(tmp_path / "s"))
    for exact in (True, False):
        with pytest.raises(FrameNotFoundError):
            store.get_image(float("nan"), exact_only=exact)
    for _ in range(store.frame_count):
        store.get_next_image()
    with pytest.raises(ImgStoreError, match="NaN"):
        store.get_next_image(timeout=float("nan"))  # it waited forever
    with pytest.raises(FrameArgumentError, match="seconds"):
        store.get_next_image(timeout="x")
    with pytest.raises(EOFError):
        store.get_next_image(timeout=0.01)
