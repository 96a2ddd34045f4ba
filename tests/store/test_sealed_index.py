"""The sealed index: a finished store's whole frame index in one file, trusted only while it fits.

Every promise is checked against the store read without its seal (chunk index by chunk index):
the same frames, numbers and times; a URL store opens in three requests; and any seal that does
not fit the store (stale, cut, bit-flipped, from another store) is ignored with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imgstore
from imgstore.errors import ImgStoreError, StoreLockedError
from imgstore.index.chunkfile import save_chunk_index
from imgstore.index.sealedfile import (
    SEALED_INDEX_FILENAME,
    SealedChunk,
    SealedIndexError,
    decode_sealed_index,
    encode_sealed_index,
)
from imgstore.store.sealing import seal_store

from framecodes import decode_grid, make_grid_frame
from remote_servers import http_server, s3_server  # noqa: F401 - fixtures
from upstream_oracle import run_upstream

SHAPE = (24, 32)
T0 = 1_700_000_000.0
IGNORED = "sealed index ignored"


def record(path: Path, fmt: str = "npy", frames: int = 95, chunksize: int = 10, seed: int = 0) -> Path:
    """A store with irregular numbers (gaps, a step back) and jittered times; sealed by its writer."""
    rng = np.random.default_rng(seed)
    numbers = np.cumsum(rng.integers(1, 4, frames)) - 7
    numbers[frames // 2] = numbers[frames // 2 - 1] - 1  # out of order once
    times = T0 + np.arange(frames) / 25 + rng.uniform(0, 0.002, frames)
    with imgstore.new_for_format(
        fmt, mode="w", basedir=str(path), imgshape=SHAPE, imgdtype="uint8", chunksize=chunksize, metadata={"lab": "x"}
    ) as store:
        for i in range(frames):
            store.add_image(make_grid_frame(i, SHAPE), int(numbers[i]), float(times[i]))
    return path


def unsealed_copy(path: Path, to: Path) -> Path:
    shutil.copytree(path, to)
    (to / SEALED_INDEX_FILENAME).unlink()
    return to


def answers(store: imgstore.stores._ImgStore) -> dict:
    """What a reader relies on from the index: every frame's number and time, chunks, lookups."""
    md = store.get_frame_metadata()
    some = md["frame_number"][:: max(1, len(md["frame_number"]) // 7)]
    return {
        "count": store.frame_count,
        "chunks": list(store.chunks),
        "md": md,
        "range": (store.frame_min, store.frame_max, store.frame_time_min, store.frame_time_max),
        "by_number": [store.get_image(n)[1] for n in some],
        "nearest": store.get_nearest_image(md["frame_time"][len(some)] + 0.0001)[1],
        "codes": [decode_grid(store.get_image(None, frame_index=i)[0]) for i in (0, store.frame_count - 1)],
    }


def opened_from_seal(path: str, caplog: pytest.LogCaptureFixture) -> dict:
    """Open ``path`` and assert its index came from the seal (a debug message says so)."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="imgstore.store.seal"):
        with imgstore.new_for_filename(path) as store:
            got = answers(store)
    assert f"from {SEALED_INDEX_FILENAME}" in caplog.text
    assert IGNORED not in caplog.text
    return got


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi", "avc1/mp4"])
def test_a_closed_store_is_sealed_and_opens_from_its_seal_alike(tmp_path: Path, fmt: str, caplog) -> None:
    store = record(tmp_path / "s", fmt)
    assert (store / SEALED_INDEX_FILENAME).is_file()
    with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / "plain"))) as plain:
        expected = answers(plain)
    assert opened_from_seal(str(store), caplog) == expected


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-1e10, 1e10, allow_nan=False),
    st.floats(1e-4, 1e3),
    st.lists(st.integers(-3, 3), min_size=2, max_size=60),
    st.integers(-(2**63), 2**63 - 200),
)
def test_steady_columns_come_back_bit_for_bit_from_deltas_of_deltas(start, step, jitter, first) -> None:
    """Times at a steady rate and numbers counting up are kept as deltas of deltas, exactly."""
    k = len(jitter)
    times = (start + step * np.arange(k)).view(np.int64) + np.array(jitter)  # a few float steps off
    numbers = first + np.cumsum(np.abs(jitter)) + np.arange(k)  # gaps of a few frames
    listed = [SealedChunk(0, "000000.npz", 100, "000000.mp4", 5, k)]
    blob = encode_sealed_index("d" * 64, listed, numbers, times.view(np.float64))
    sealed = decode_sealed_index(blob, "x")
    assert sealed.frame_number.tolist() == numbers.tolist()
    assert sealed.frame_time.view(np.int64).tolist() == times.tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30),
            st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=30),
        ),
        max_size=6,
    )
)
def test_the_file_gives_back_every_value_bit_for_bit(chunks) -> None:
    """Any numbers and times (NaN payloads, -0.0, extremes) come back exactly, chunk by chunk."""
    numbers, times, listed = [], [], []
    for n, (chunk_numbers, chunk_times) in enumerate(chunks):
        k = min(len(chunk_numbers), len(chunk_times))
        numbers += chunk_numbers[:k]
        times += chunk_times[:k]
        listed.append(SealedChunk(n, f"{n:06d}.npz", 100 + n, f"{n:06d}.mp4", -1 if n % 2 else 5, k))
    numbers_in = np.array(numbers, dtype=np.int64)
    times_in = np.array(times, dtype=np.float64)
    sealed = decode_sealed_index(encode_sealed_index("d" * 64, listed, numbers_in, times_in), "x")
    assert sealed.chunks == tuple(listed) and sealed.store_digest == "d" * 64
    assert sealed.frame_number.dtype == np.int64 and np.array_equal(sealed.frame_number, numbers_in)
    assert sealed.frame_time.view(np.int64).tolist() == times_in.view(np.int64).tolist()
    floats = numbers_in.astype(np.float64) + 0.5
    again = decode_sealed_index(encode_sealed_index("d" * 64, listed, floats, times_in), "x")
    assert (
        again.frame_number.dtype == np.float64
        and again.frame_number.view(np.int64).tolist() == floats.view(np.int64).tolist()
    )


#: a version-1 seal (deltas not shuffled), as this library wrote them before version 2: two chunks,
#: numbers 5, 6, 9, 8, 300, 301 and jittered times with a NaN
V1_SEAL = (
    "SU1HU1RPUkUtU0VBTEVELUlOREVYCgAAAQAAAF8BAAAAAAAA+ROikGc7Y0c8b3Dm07r2jUs4TVBBZ5PAkx93Vkn+E/Z7InN0b3JlX2RpZ2Vz"
    "dCI6ImRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGQiLCJjaHVua3MiOltb"
    "MCwiMDAwMDAwLm5weiIsMTAwLCIwMDAwMDAubXA0Iiw1LDRdLFsxLCIwMDAwMDEubnB6Iiw5MCwiMDAwMDAxLm1wNCIsNCwyXV0sImNvbHVt"
    "bnMiOnsiZnJhbWVfbnVtYmVyIjp7ImtpbmQiOiI8aTgiLCJkZWx0YXMiOiI8aTIiLCJieXRlcyI6MTgsIm9yZGVyIjoxLCJoZWFkIjpbNV19"
    "LCJmcmFtZV90aW1lIjp7ImtpbmQiOiI8ZjgiLCJkZWx0YXMiOiI8aTgiLCJieXRlcyI6MzgsIm9yZGVyIjoxLCJoZWFkIjpbNDc0NDkxNzEy"
    "NDc5Mzc2MTc5Ml19fX14nGNkYGb4/1+FkZEBAAu2Ail4nNs3n4kBBJ40Q+i4O7/2M6+WszOL43L4E/LwoFUBRBwA6HELQg=="
)


def test_a_version_1_seal_still_reads_exactly() -> None:
    sealed = decode_sealed_index(base64.b64decode(V1_SEAL), "x")
    assert [c.frames for c in sealed.chunks] == [4, 2]
    assert sealed.frame_number.tolist() == [5, 6, 9, 8, 300, 301]
    assert sealed.frame_time.view(np.int64).tolist() == [
        4744917124793761792, 4744917124793933758, 4744917124794098594,
        9221120237041090560, 4744917124794441270, 4744917124794601072,
    ]  # fmt: skip


def test_jittered_times_are_stored_as_byte_planes_and_come_back_exactly() -> None:
    """A camera's jittered times (4-byte deltas, stored plane by plane) come back bit for bit."""
    k = 20_000
    rng = np.random.default_rng(1)
    times = T0 + np.arange(k) / 25 + rng.uniform(0, 0.002, k)
    numbers = np.arange(k) + 1000
    listed = [SealedChunk(0, "000000.npz", 100, "000000.mp4", 5, k)]
    blob = encode_sealed_index("d" * 64, listed, numbers, times)
    sealed = decode_sealed_index(blob, "x")
    assert sealed.frame_time.view(np.int64).tolist() == times.view(np.int64).tolist()
    assert sealed.frame_number.tolist() == numbers.tolist()


def test_numbers_with_a_few_gaps_are_kept_as_runs_and_come_back_exactly() -> None:
    k = 50_000
    numbers = np.arange(k) + 1000 + np.arange(k) // 5000  # a dropped frame every 5,000
    times = T0 + numbers / 25
    listed = [SealedChunk(0, "000000.npz", 100, "000000.mp4", 5, k)]
    blob = encode_sealed_index("d" * 64, listed, numbers, times)
    sealed = decode_sealed_index(blob, "x")
    assert sealed.frame_number.tolist() == numbers.tolist()
    assert sealed.frame_time.view(np.int64).tolist() == times.view(np.int64).tolist()
    assert _header(blob)["columns"]["frame_number"]["runs"] <= 1 + 2 * 9  # two per gap (deltas of deltas)


def _header(blob: bytes) -> dict:
    prefix = struct.Struct("<24sIQ32s")
    header_len = prefix.unpack_from(blob)[2]
    return json.loads(blob[prefix.size : prefix.size + header_len])


def _resealed(blob: bytes, column: str, runs: int, payload: bytes) -> bytes:
    """``blob`` with ``column``'s runs replaced by ``payload`` and a valid checksum: only the decoder's checks stand."""
    prefix = struct.Struct("<24sIQ32s")
    magic, version, header_len, _ = prefix.unpack_from(blob)
    header = _header(blob)
    blobs, at = {}, prefix.size + header_len
    for name in ("frame_number", "frame_time"):
        blobs[name] = blob[at : at + header["columns"][name]["bytes"]]
        at += header["columns"][name]["bytes"]
    blobs[column] = zlib.compress(payload)
    header["columns"][column].update(runs=runs, bytes=len(blobs[column]))
    text = json.dumps(header).encode()
    body = text + blobs["frame_number"] + blobs["frame_time"]
    return prefix.pack(magic, version, len(text), hashlib.sha256(body).digest()) + body


@pytest.mark.parametrize(
    "runs, values, lengths",
    [
        (2, [1, 2], [10, -1]),  # a negative run
        (2, [1, 2], [0, 9]),  # an empty run
        (2, [1, 2], [5, 5]),  # one frame too many
        (1, [1], [2**62]),  # far too many
        (2, [1, 2], [3]),  # cut
    ],
)
def test_hostile_runs_are_an_error_never_an_index(runs: int, values: list, lengths: list) -> None:
    k = 10
    listed = [SealedChunk(0, "000000.npz", 100, "000000.mp4", 5, k)]
    blob = encode_sealed_index("d" * 64, listed, np.arange(k), T0 + np.arange(k) / 25)
    payload = np.array(values, "<i8").tobytes() + np.array(lengths, "<i8").tobytes()
    with pytest.raises(SealedIndexError, match="where"):
        decode_sealed_index(_resealed(blob, "frame_number", runs, payload), "where")


def test_every_damaged_byte_is_detected(tmp_path: Path) -> None:
    """A flipped bit anywhere in the file, or the file cut anywhere, is an error naming it, never an index."""
    data = (record(tmp_path / "s") / SEALED_INDEX_FILENAME).read_bytes()
    for at in range(len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 1 << (at % 8)
        with pytest.raises(SealedIndexError, match="where"):
            decode_sealed_index(bytes(flipped), "where")
    for cut in range(len(data)):
        with pytest.raises(SealedIndexError, match="where"):
            decode_sealed_index(data[:cut], "where")


def _remove_last_chunk(store: Path) -> None:
    shutil.rmtree(store / "000009")


def _add_chunk(store: Path) -> None:
    shutil.copytree(store / "000009", store / "000010")


def _rewrite_chunk_index(store: Path) -> None:
    """Chunk 3's index gets other numbers and one frame less (its size changes)."""
    numbers = np.arange(1000, 1009)
    save_chunk_index(str(store / "000003" / "index"), numbers, T0 + numbers / 25.0)


def _rewrite_chunk_index_same_size(store: Path) -> None:
    """Chunk 3's index gets other times, same size: only its time on this disk gives it away."""
    with np.load(store / "000003" / "index.npz") as index:
        numbers, times = index["frame_number"], index["frame_time"]
    save_chunk_index(str(store / "000003" / "index"), numbers, times + 1000.0)
    later = os.stat(store / SEALED_INDEX_FILENAME).st_mtime_ns + 10**9
    os.utime(store / "000003" / "index.npz", ns=(later, later))


def _another_stores_seal(store: Path) -> None:
    other = record(store.parent / "other", seed=1)
    shutil.copyfile(other / SEALED_INDEX_FILENAME, store / SEALED_INDEX_FILENAME)


def _flip_a_bit(store: Path) -> None:
    path = store / SEALED_INDEX_FILENAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 4
    path.write_bytes(bytes(data))


def _cut(store: Path) -> None:
    path = store / SEALED_INDEX_FILENAME
    path.write_bytes(path.read_bytes()[:-5])


def _other_store_metadata(store: Path) -> None:
    md = store / "metadata.yaml"
    md.write_text(md.read_text().replace("chunksize: 10", "chunksize: 11"))


MISFITS = {
    "chunk-removed": _remove_last_chunk,
    "chunk-added": _add_chunk,
    "index-rewritten": _rewrite_chunk_index,
    "index-rewritten-same-size": _rewrite_chunk_index_same_size,
    "another-stores-seal": _another_stores_seal,
    "bit-flipped": _flip_a_bit,
    "cut": _cut,
    "store-metadata-changed": _other_store_metadata,
}
#: what a URL store cannot see without a request per chunk: a file's time, and (a plain HTTP
#: listing gives no sizes, and chunk folders are not listed) the size of a rewritten index
LOCAL_ONLY = {"index-rewritten-same-size", "index-rewritten"}


@pytest.mark.parametrize("where", ["local", "url"])
@pytest.mark.parametrize("misfit", sorted(MISFITS))
def test_a_seal_that_does_not_fit_is_ignored_with_a_warning(
    tmp_path: Path,
    http_server,  # noqa: F811 - fixture
    caplog,
    misfit: str,
    where: str,
) -> None:
    if where == "url" and misfit in LOCAL_ONLY:
        pytest.skip("a server lists no times: the same-size rewrite is caught on this disk only")
    root, url, _ = http_server
    base = root / f"{misfit}-{where}"
    store = record(base / "s")
    MISFITS[misfit](store)
    with imgstore.new_for_filename(str(unsealed_copy(store, base / "plain"))) as plain:
        expected = answers(plain)
    caplog.clear()
    path = f"{url}/{misfit}-{where}/s" if where == "url" else str(store)
    with caplog.at_level(logging.WARNING), imgstore.new_for_filename(path) as opened:
        got = answers(opened)
    assert IGNORED in caplog.text and (SEALED_INDEX_FILENAME in caplog.text or "store" in caplog.text)
    assert got == expected


def test_user_metadata_edited_after_sealing_keeps_the_seal(tmp_path: Path, caplog) -> None:
    store = record(tmp_path / "s")
    md = store / "metadata.yaml"
    md.write_text(md.read_text().replace("lab: x", "lab: y\nnote: reviewed"))
    assert opened_from_seal(str(store), caplog)["count"] == 95


def test_a_url_store_opens_in_three_requests(tmp_path: Path, http_server, caplog) -> None:  # noqa: F811
    root, url, traffic = http_server
    for fmt, name in (("npy", "week-npy"), ("mjpeg/avi", "week-avi")):
        store = record(root / name, fmt, frames=400, chunksize=5)  # 80 chunks
        with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / name))) as plain:
            expected = answers(plain)
        traffic.reset()
        with imgstore.new_for_filename(f"{url}/{name}") as remote:
            assert len(remote.chunks) == 80
            assert traffic.requests == [f"/{name}/metadata.yaml", f"/{name}/", f"/{name}/{SEALED_INDEX_FILENAME}"]
        assert opened_from_seal(f"{url}/{name}", caplog) == expected


def test_an_s3_store_opens_in_three_requests(tmp_path: Path, s3_server, caplog) -> None:  # noqa: F811
    """metadata.yaml, the seal, a listing of what follows its last chunk (``test_sealed_s3``):
    s3fs asks for no file's size first."""
    import s3fs

    store = record(tmp_path / "s", "mjpeg/avi", frames=400, chunksize=5)  # 80 chunks
    with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / "plain"))) as plain:
        expected = answers(plain)
    s3fs.S3FileSystem(**s3_server).put(str(store), "recordings/three/s", recursive=True)
    traffic = s3_server.traffic
    traffic.reset()
    with imgstore.new_for_filename("s3://recordings/three/s", storage_options=s3_server) as remote:
        assert len(remote.chunks) == 80
        asked = list(traffic.requests)
    assert [r.split("?")[0] for r in asked] == [
        "GET /recordings/three/s/metadata.yaml",
        f"GET /recordings/three/s/{SEALED_INDEX_FILENAME}",
        "GET /recordings",  # the listing of the store's folder after its last chunk
    ], asked
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="imgstore.store.seal"):
        with imgstore.new_for_filename("s3://recordings/three/s", storage_options=s3_server) as remote:
            assert answers(remote) == expected
    assert f"from {SEALED_INDEX_FILENAME}" in caplog.text and IGNORED not in caplog.text


def test_reindex_renews_the_seal(tmp_path: Path, caplog) -> None:
    store = tmp_path / "s"
    with imgstore.new_for_format("npy", mode="w", basedir=str(store), imgshape=SHAPE, chunksize=10) as s:
        for i in range(35):
            s.add_image(make_grid_frame(i, SHAPE), 0 if i == 12 else 1000 + i, T0 + i / 25)
    with imgstore.new_for_filename(str(store)) as s:
        s.reindex()  # numbers about the one frame 0: the seal must follow
    with imgstore.new_for_filename(str(unsealed_copy(store, tmp_path / "plain"))) as plain:
        expected = answers(plain)
    assert opened_from_seal(str(store), caplog) == expected


def test_seal_store_seals_what_others_recorded(tmp_path: Path, fixtures_dir: Path, fixture_name: str, caplog) -> None:
    """Stores written by upstream (and Motif) get a seal that answers as their chunk indexes do."""
    store = tmp_path / fixture_name
    shutil.copytree(fixtures_dir / fixture_name, store)
    if (store / SEALED_INDEX_FILENAME).exists():
        pytest.skip("sealed already")
    with imgstore.new_for_filename(str(store)) as plain:
        expected = {"md": plain.get_frame_metadata(), "chunks": list(plain.chunks), "count": plain.frame_count}
    report = seal_store(str(store))
    assert report.frames == expected["count"] and str(report).startswith(str(store))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="imgstore.store.seal"), imgstore.new_for_filename(str(store)) as s:
        got = {"md": s.get_frame_metadata(), "chunks": list(s.chunks), "count": s.frame_count}
    assert f"from {SEALED_INDEX_FILENAME}" in caplog.text
    assert got == expected


def test_seal_store_refuses_what_it_cannot_seal(tmp_path: Path) -> None:
    with pytest.raises(ImgStoreError, match="read-only"):
        seal_store("http://127.0.0.1:9/s")
    writing = imgstore.new_for_format("npy", mode="w", basedir=str(tmp_path / "w"), imgshape=SHAPE, chunksize=4)
    for i in range(6):
        writing.add_image(make_grid_frame(i, SHAPE), i, T0 + i)
    with pytest.raises(StoreLockedError, match="lock"):
        seal_store(str(tmp_path / "w"))
    writing.close()
    store = record(tmp_path / "s")
    (store / "000003" / "index.npz").write_bytes(b"not an index")
    with pytest.raises(ImgStoreError, match="000003"):
        seal_store(str(store))


def test_repair_seals_what_it_finished(tmp_path: Path, caplog) -> None:
    store = record(tmp_path / "s")
    (store / SEALED_INDEX_FILENAME).unlink()
    (store / ".lock").write_text("")  # a stale lock: a writer that died after its last chunk
    report = imgstore.repair_store(str(store))
    assert report.sealed and "sealed its index" in str(report)
    assert opened_from_seal(str(store), caplog)["count"] == 95
    untouched = imgstore.repair_store(str(store))  # nothing to repair: nothing written
    assert not untouched.sealed


UPSTREAM_READS = """
def main(path):
    import imgstore
    store = imgstore.new_for_filename(path)
    md = store.get_frame_metadata()
    img, (number, time) = store.get_image(None, frame_index=store.frame_count - 1)
    out = {"frame_count": store.frame_count, "frame_number": md["frame_number"], "frame_time": md["frame_time"],
           "number": number, "chunks": list(store.chunks)}
    store.close()
    return out
"""


@pytest.mark.parametrize("fmt", ["npy", "mjpeg/avi"])
def test_upstream_reads_a_sealed_store(tmp_path: Path, fmt: str) -> None:
    store = record(tmp_path / "s", fmt, frames=40, chunksize=10)
    assert (store / SEALED_INDEX_FILENAME).is_file()
    result = run_upstream(UPSTREAM_READS, str(store))
    with imgstore.new_for_filename(str(store)) as ours:
        md = ours.get_frame_metadata()
        assert result["frame_count"] == ours.frame_count == 40
        assert result["frame_number"] == md["frame_number"] and result["frame_time"] == md["frame_time"]
        assert result["number"] == md["frame_number"][-1]
        assert result["chunks"] == list(ours.chunks)
