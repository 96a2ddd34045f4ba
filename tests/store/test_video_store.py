"""VideoImgStore layout and writing rules (frame-exact reading is tests/store/test_video.py)."""

from __future__ import annotations

import os

import av
import cv2
import numpy as np
import pytest
import yaml

import imgstore
from imgstore.errors import ImgStoreError, UnsupportedFormatError
from imgstore.store.layout import chunk_files_in

from framecodes import decode_grid, make_grid_frame

T0 = 1_600_000_000.0


def _write(path, fmt="avc1/mp4", n=5, chunksize=5, shape=(48, 64), **kwargs):
    store = imgstore.new_for_format(fmt, path=str(path), imgshape=shape, chunksize=chunksize, **kwargs)
    for i in range(n):
        store.add_image(make_grid_frame(i, shape, noise=False), i, T0 + i)
    return store


def test_extra_data_of_the_empty_last_chunk_is_read(tmp_path):
    """The empty chunk after a full one gets an empty video, as upstream writes, beside its extra data."""
    store = _write(tmp_path / "s", n=5, chunksize=5)  # full chunk: chunk 1 starts empty
    store.add_extra_data(after_last=True)
    store.close()
    names = sorted(os.listdir(tmp_path / "s"))
    assert names == [
        "000000.mp4",
        "000000.npz",
        "000001.extra.json",
        "000001.mp4",
        "000001.npz",
        "imgstore-sealed-index",
        "metadata.yaml",
    ]
    with av.open(str(tmp_path / "s" / "000001.mp4")) as empty:  # a valid file, with no frame
        assert len(empty.streams.video) == 1 and not any(p.size for p in empty.demux(video=0))
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert reader.has_extra_data and reader.chunks == [0]
    assert list(reader.get_extra_data()["after_last"]) == [True]
    os.unlink(tmp_path / "s" / "000001.mp4")  # as older versions wrote it: still read
    assert list(imgstore.new_for_filename(str(tmp_path / "s")).get_extra_data()["after_last"]) == [True]


def test_chunk_index_without_its_video_is_skipped_with_a_warning(tmp_path, caplog):
    _write(tmp_path / "s", n=10, chunksize=5).close()
    os.unlink(tmp_path / "s" / "000000.mp4")
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert reader.chunks == [1] and reader.get_frame_metadata()["frame_number"] == [5, 6, 7, 8, 9]
    assert "000000.mp4 is missing" in caplog.text
    assert decode_grid(reader.get_next_image()[0]) == 5


def test_chunk_files_are_told_apart_by_their_suffix():
    names = [
        "000000.mp4",
        "000000.npz",
        "000001.mp4",
        "000001.journal",
        "000002.extra_data.json",
        "metadata.yaml",
        "000003.mp4.tmp",
        "x00004.mp4",
        "000005",
        ".imgstore-index-cache",
        "000006.npz",
    ]
    files = chunk_files_in(names, (".mp4", ".npz", ".yaml", ".extra_data.json", ".journal"))
    assert files == {0: {".mp4", ".npz"}, 1: {".mp4", ".journal"}, 2: {".extra_data.json"}, 6: {".npz"}}


def test_one_listing_tells_finished_unfinished_and_videoless_chunks(tmp_path, caplog):
    store = _write(tmp_path / "s", n=12, chunksize=5)  # chunks 0 and 1 finished, 2 being written
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    unfinished, finished = reader.view.layout.scan()
    assert unfinished == [2] and [n for n, _ in finished] == [0, 1]
    assert finished[0][1] == str(tmp_path / "s" / "000000")
    store.close()
    os.unlink(tmp_path / "s" / "000001.mp4")
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert reader.view.layout.scan() == ([], [(0, str(tmp_path / "s" / "000000")), (2, str(tmp_path / "s" / "000002"))])
    assert "000001.mp4 is missing" in caplog.text


def test_inserted_chunks_do_not_shift_later_chunk_boundaries(tmp_path):
    source = _write(tmp_path / "src", n=10, chunksize=10)
    source.close()
    store = _write(tmp_path / "s", n=3, chunksize=5)
    store.insert_chunk(
        str(tmp_path / "src" / "000000.mp4"), list(range(100, 110)), [T0 + 100 + i for i in range(10)], move=False
    )
    for i in range(5):
        store.add_image(make_grid_frame(20 + i, (48, 64), noise=False), 200 + i, T0 + 200 + i)
    store.close()
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert reader.chunks == [0, 1, 2]
    sizes = [len(reader._get_chunk_metadata(c)["frame_number"]) for c in reader.chunks]
    assert sizes == [3, 10, 5]
    assert reader.get_image(203)[1][0] == 203 and decode_grid(reader.get_image(105)[0]) == 5


def test_insert_chunk_needs_whole_frame_numbers(tmp_path):
    source = _write(tmp_path / "src", n=2)
    source.close()
    store = imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=(48, 64))
    with pytest.raises(ImgStoreError, match="whole numbers"):
        store.insert_chunk(str(tmp_path / "src" / "000000.mp4"), [0.5, 1.5], [T0, T0 + 1], move=False)
    store.close()


def test_grey_pixel_format_is_refused_for_colour_frames(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="pix_fmt"):
        imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=(48, 64, 3), pix_fmt="gray")
    assert not (tmp_path / "s").exists()


def test_opencv_backend_reads_8_bit_only(tmp_path):
    _write(tmp_path / "s", fmt="ffv1/mkv", n=2, imgdtype="uint16").close()
    with pytest.raises(UnsupportedFormatError, match="backend='av'"):
        imgstore.new_for_filename(str(tmp_path / "s"), backend="opencv").get_next_image()


@pytest.mark.usefixtures("opencv")
def test_supported_formats_per_backend():
    ours = imgstore.get_supported_formats()
    opencv = imgstore.get_supported_formats(backend="opencv")
    video_opencv = [f for f in opencv if imgstore.VideoImgStore.supports_format(f)]
    assert set(video_opencv) <= {"mjpeg/avi", "avc1/mp4", "h264/mkv"}
    assert [f for f in opencv if f not in video_opencv] == imgstore.DirectoryImgStore.supported_formats()
    assert {"mjpeg/avi", "avc1/mp4", "h264/mkv", "ffv1/mkv"} <= set(ours)
    with pytest.raises(UnsupportedFormatError, match="unknown video backend"):
        imgstore.get_supported_formats(backend="gstreamer")


def test_odd_shape_corrected_only_for_formats_written_at_even_sizes(tmp_path, caplog):
    _write(tmp_path / "ours", n=2, shape=(48, 64)).close()
    _write(tmp_path / "other", fmt="ffv1/mkv", n=2, shape=(48, 64)).close()
    for name, fmt in (("ours", "avc1/mp4"), ("other", "someencoder")):
        md_path = tmp_path / name / "metadata.yaml"
        md = yaml.safe_load(md_path.read_text())
        md["__store"].update(imgshape=[49, 65], format=fmt)
        md_path.write_text(yaml.safe_dump(md))
    assert imgstore.new_for_filename(str(tmp_path / "ours")).image_shape == (48, 64)
    assert "corrected" in caplog.text
    assert imgstore.new_for_filename(str(tmp_path / "other")).image_shape == (49, 65)


def test_encoder_settings_are_not_for_directory_stores(tmp_path):
    with pytest.raises(TypeError):
        imgstore.new_for_format("npy", path=str(tmp_path / "s"), imgshape=(8, 8), crf=20)


def test_insert_chunk_checks_the_frame_count(tmp_path):
    source = _write(tmp_path / "src", n=4)
    source.close()
    store = imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=(48, 64))
    with pytest.raises(ImgStoreError, match="holds 4 frames but 3"):
        store.insert_chunk(str(tmp_path / "src" / "000000.mp4"), [0, 1, 2], [T0, T0 + 1, T0 + 2])
    assert (tmp_path / "src" / "000000.mp4").exists(), "a refused file stays where it was"
    store.close()


def test_write_store_statistics_count_inserted_chunks(tmp_path):
    """After insert_chunk, the writing store's frame range, times and count include the inserted
    frames, as the same store reopened reports them; add_extra_data tags the last inserted frame."""
    source = _write(tmp_path / "src", n=10, chunksize=10)
    source.close()
    store = imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=(48, 64), chunksize=5)
    numbers, times = list(range(100, 110)), [T0 + 50 + i for i in range(10)]
    store.insert_chunk(str(tmp_path / "src" / "000000.mp4"), numbers[::-1], times, move=False)
    written = (store.frame_count, store.frame_min, store.frame_max, store.frame_time_min, store.frame_time_max)
    assert written == (10, 100.0, 109.0, T0 + 50, T0 + 59)
    assert (store.frame_number, store.frame_time) == (100, T0 + 59)
    store.add_extra_data(after="insert")
    for i in range(3):
        store.add_image(make_grid_frame(i, (48, 64), noise=False), i, T0 + i)
    assert (store.frame_count, store.frame_min, store.frame_max, store.frame_time_max) == (13, 0.0, 109.0, T0 + 2)
    store.close()
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert (reader.frame_count, reader.frame_min, reader.frame_max) == (13, 0.0, 109.0)
    assert (reader.frame_time_min, reader.frame_time_max) == (T0, T0 + 59)
    record = reader.get_extra_data().iloc[0]
    assert (record["after"], record["frame_number"], record["frame_index"]) == ("insert", 100, 9)


def test_no_empty_chunk_is_left_after_an_inserted_one(tmp_path):
    """Closing right after insert_chunk leaves exactly the inserted chunks, as upstream does."""
    source = _write(tmp_path / "src", n=4, chunksize=10)
    source.close()
    store = imgstore.new_for_format("avc1/mp4", path=str(tmp_path / "s"), imgshape=(48, 64), chunksize=5)
    for first in (0, 10):
        store.insert_chunk(
            str(tmp_path / "src" / "000000.mp4"),
            [first + i for i in range(4)],
            [T0 + first + i for i in range(4)],
            move=False,
        )
    store.close()
    assert sorted(os.listdir(tmp_path / "s")) == [
        "000000.mp4",
        "000000.npz",
        "000001.mp4",
        "000001.npz",
        "imgstore-sealed-index",
        "metadata.yaml",
    ]


def test_write_encode_encoding_converts_frames_before_writing(tmp_path):
    """Upstream's ``write_encode_encoding``: raw sensor frames are demosaiced, then stored as colour video."""
    raw = make_grid_frame(3, (48, 64), noise=False)
    store = imgstore.VideoImgStore(
        basedir=str(tmp_path / "s"),
        mode="w",
        imgshape=(48, 64),
        imgdtype="uint8",
        chunksize=5,
        format="ffv1/mkv",
        write_encode_encoding="cv_bayerbg",
    )
    store.add_image(raw, 0, T0)
    store.close()
    reader = imgstore.new_for_filename(str(tmp_path / "s"))
    assert reader.image_shape == (48, 64, 3)
    np.testing.assert_array_equal(reader.get_image(0)[0], cv2.cvtColor(raw, cv2.COLOR_BayerBG2BGR))


def test_insert_chunk_keeps_earlier_extra_data_when_its_journal_cannot_be_removed(tmp_path, monkeypatch):
    """Only the chunk file and its index are undone by a failed insert; a failure after the index is
    written (removing the journal) must not reopen, and so empty, the extra data written before."""
    from imgstore.durability.journal import ChunkJournal

    source = _write(tmp_path / "src", fmt="ffv1/mkv", n=4, chunksize=10)
    source.close()
    real_remove, failures = ChunkJournal.remove, [1]

    def remove_fails_once(self):
        if failures:
            failures.pop()
            self.close()
            raise OSError(5, "Input/output error")
        real_remove(self)

    store = imgstore.new_for_format("ffv1/mkv", path=str(tmp_path / "s"), imgshape=(48, 64), chunksize=3)
    store.add_extra_data(note="before insert")
    monkeypatch.setattr(ChunkJournal, "remove", remove_fails_once)
    with pytest.raises(OSError, match="Input/output error"):
        store.insert_chunk(str(tmp_path / "src" / "000000.mkv"), [100, 101, 102, 103], [T0, T0 + 1, T0 + 2, T0 + 3],
                           move=False)  # fmt: skip
    store.add_extra_data(note="after")
    store.close()
    assert imgstore.new_for_filename(str(tmp_path / "s")).get_extra_data()["note"].tolist() == [
        "before insert",
        "after",
    ]
