"""``.index.sqlite`` moves both ways: upstream 0.4.0 loads the index we save, and we load its."""

from __future__ import annotations

import imgstore
from imgstore.constants import STORE_INDEX_FILENAME
from imgstore.index import ImgStoreIndex

from framecodes import make_grid_frame
from upstream_oracle import run_upstream

NUMBERS = [6050, 6055, 6056, 0, 1, 2, 2, 3, 7]
TIMES = [1600008000.0 + 0.5 * i for i in range(len(NUMBERS))]

_UPSTREAM_LOAD = """
import imgstore
from imgstore.index import ImgStoreIndex

def main(path, index_path):
    index = ImgStoreIndex.new_from_file(index_path)
    store = imgstore.new_for_filename(path, index=index)
    img, (number, _) = store.get_image(2)
    return {"metadata": store.get_frame_metadata(), "chunks": list(index.chunks),
            "frame_min": index.frame_min, "frame_max": index.frame_max,
            "number": number, "first_pixel": int(img[0, 0])}
"""

_UPSTREAM_SAVE = """
import numpy as np
import imgstore

def main(path, numbers, times):
    store = imgstore.new_for_format("npy", path=path, imgshape=(16, 16), chunksize=2)
    for i, (n, t) in enumerate(zip(numbers, times)):
        store.add_image(np.full((16, 16), i, np.uint8), n, t)
    store.close()
    imgstore.new_for_filename(path).save_index()
    return {}
"""


def test_upstream_reads_the_index_we_save(tmp_path):
    path = tmp_path / "ours"
    with imgstore.new_for_format("npy", path=str(path), imgshape=(16, 16), chunksize=2) as store:
        for i, (n, t) in enumerate(zip(NUMBERS, TIMES)):
            store.add_image(make_grid_frame(i, (16, 16)), n, t)
    imgstore.new_for_filename(str(path)).save_index()
    got = run_upstream(_UPSTREAM_LOAD, str(path), str(path / STORE_INDEX_FILENAME))
    assert got["metadata"] == {"frame_number": NUMBERS, "frame_time": TIMES}
    assert got["chunks"] == [0, 1, 2, 3, 4]
    assert (got["frame_min"], got["frame_max"], got["number"]) == (0.0, 6056.0, 2)
    assert got["first_pixel"] == make_grid_frame(5, (16, 16))[0, 0]  # the first frame numbered 2


def test_we_read_the_index_upstream_saves(tmp_path):
    path = tmp_path / "theirs"
    run_upstream(_UPSTREAM_SAVE, str(path), NUMBERS, TIMES)
    index = ImgStoreIndex.new_from_file(str(path / STORE_INDEX_FILENAME))
    assert index.get_all_metadata() == {"frame_number": NUMBERS, "frame_time": TIMES}
    store = imgstore.new_for_filename(str(path), index=index)
    img, (number, time) = store.get_image(2)
    assert (number, time, int(img[0, 0])) == (2, TIMES[5], 5)
    assert store.get_image(5, exact_only=False)[1][0] == 3  # tie 3/7: the first in store order
