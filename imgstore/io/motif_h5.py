"""Motif's HDF5 extra-data files (``NNNNNN.extra_data.h5``): reading them, and writing chosen
samples of some of them as one new file of the same layout (for edited stores).

The layout, as upstream reads it: the root attribute ``datasets`` names (comma-separated) the
datasets of sampled values; each holds one row of values per column (its ``column_names``
attribute, comma-separated; often a ``samplerate`` too) and one entry per sample along its last
axis. The compound dataset ``camera`` holds, per sample, the camera frame it was taken at
(``frame_number``, and ``frame_time`` in the files Motif writes), and ``sample_delay`` one value
per sample. Motif pre-allocates samples: those never filled have frame number -1. Other members
(groups of settings...) are read by nobody but ``motif_extra_data_h5_attrs``, which lists their
attributes.

h5py is optional (the ``h5`` extra): it is imported when a file is first read or written.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ExtraDataError, MissingDependencyError
from .extra import MAX_EXTRA_DATA_BYTES, files_of
from .fs import LOCAL, LocalFileSystem, is_regular_file

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: the members every Motif file has besides its datasets of values
CAMERA, SAMPLE_DELAY = "camera", "sample_delay"

#: what h5py raises for a damaged or foreign HDF5 file, or one whose layout is not Motif's
_H5_ERRORS = (KeyError, OSError, ValueError, TypeError, IndexError, AttributeError, RuntimeError)


def import_h5py(what: str = "reading Motif .extra_data.h5 files") -> Any:
    """h5py, or ``MissingDependencyError`` saying that ``what`` needs it and how to install it."""
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError(f"{what} needs h5py: pip install h5py") from None
    return h5py


def _attr_text(value: Any) -> str:
    """h5py 2 returns bytes attributes, h5py 3 returns str: accept both."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("ascii")
    return str(value)


def _split_names(value: Any) -> List[str]:
    return [s.strip() for s in _attr_text(value).split(",") if s.strip()]


def _h5_source(path: str, fs: LocalFileSystem) -> Any:
    """What ``h5py.File`` opens: a file object for a URL, else the path of a regular file."""
    source = fs.source(path)
    if isinstance(source, str) and not is_regular_file(source):  # HDF5 would wait on a FIFO, read a device
        raise ExtraDataError(f"{path}: not a regular file; refusing to read it as extra data")
    return source


def _h5_array(dataset: Any, path: str) -> np.ndarray:
    """A dataset's values, once its declared size is known to fit what extra data may hold."""
    nbytes = int(np.prod(dataset.shape, dtype=np.float64)) * dataset.dtype.itemsize
    if nbytes > MAX_EXTRA_DATA_BYTES:
        raise ExtraDataError(f"{path}: dataset {dataset.name} declares {nbytes} bytes, more than extra data may hold")
    return np.asarray(dataset)


def motif_extra_data_h5_attrs(path: str, fs: LocalFileSystem = LOCAL) -> Dict[str, Any]:
    """The attributes of a Motif HDF5 extra-data file: ``_datasets`` plus each group's attributes."""
    h5py = import_h5py()
    try:
        with h5py.File(_h5_source(path, fs), "r") as f:
            attrs: Dict[str, Any] = {"_datasets": _split_names(f.attrs["datasets"])}
            for name in f.keys():
                attrs[name] = dict(f[name].attrs)
    except ExtraDataError:
        raise
    except _H5_ERRORS as exc:
        raise ExtraDataError(f"{path}: not a Motif extra-data file ({exc})") from None
    return attrs


def motif_extra_data_h5_to_df(store: Any, path: str) -> pd.DataFrame:
    """Motif's ``NNNNNN.extra_data.h5``: its datasets' columns plus camera sync data, one row per frame."""
    return motif_h5_frame(path, files_of(store))


def motif_h5_frame(path: str, fs: LocalFileSystem = LOCAL) -> pd.DataFrame:
    """Motif's ``NNNNNN.extra_data.h5`` read through ``fs`` (see ``motif_extra_data_h5_to_df``)."""
    import pandas as pd

    h5py = import_h5py()
    try:
        with h5py.File(_h5_source(path, fs), "r") as f:
            camera = _h5_array(f[CAMERA], path)
            recorded = camera["frame_number"] >= 0  # Motif pre-allocates rows; unused ones have -1
            columns: Dict[str, Any] = {}
            for dsname in _split_names(f.attrs["datasets"]):
                dataset = f[dsname]
                names = _split_names(dataset.attrs["column_names"])
                values = _h5_array(dataset, path)[..., recorded]
                if len(names) != values.shape[0]:
                    raise ExtraDataError(
                        f"{path}: dataset {dsname} has {values.shape[0]} rows for {len(names)} column names"
                    )
                columns.update(zip(names, values))
            for name in camera.dtype.names:
                columns[name] = camera[name][recorded]
            columns["sample_delay"] = _h5_array(f[SAMPLE_DELAY], path)[recorded]
        return pd.DataFrame(columns)
    except ExtraDataError:
        raise
    except _H5_ERRORS as exc:
        raise ExtraDataError(f"{path}: not a Motif extra-data file ({exc})") from None


@dataclasses.dataclass(frozen=True)
class MotifSamples:
    """Which samples of a Motif HDF5 file were recorded, and the camera frame each was taken at."""

    path: str
    #: positions of the recorded samples in the file (the unused pre-allocated ones left out)
    rows: np.ndarray
    frame_number: np.ndarray
    #: the camera frame's time of each recorded sample; None when the file has no ``frame_time``
    frame_time: Optional[np.ndarray]


def motif_h5_samples(path: str, fs: LocalFileSystem = LOCAL) -> MotifSamples:
    """The recorded samples of a Motif HDF5 file, from its ``camera`` dataset alone."""
    h5py = import_h5py()
    try:
        with h5py.File(_h5_source(path, fs), "r") as f:
            camera = _h5_array(f[CAMERA], path)
            rows = np.flatnonzero(camera["frame_number"] >= 0)
            times = camera["frame_time"][rows].astype(np.float64) if "frame_time" in camera.dtype.names else None
            return MotifSamples(path, rows, camera["frame_number"][rows], times)
    except ExtraDataError:
        raise
    except _H5_ERRORS as exc:
        raise ExtraDataError(f"{path}: not a Motif extra-data file ({exc})") from None


def write_motif_h5(dest: str, pieces: Sequence[Tuple[LocalFileSystem, str, np.ndarray]]) -> int:
    """Write the samples ``rows`` of each ``(file system, source path, rows)`` of ``pieces``, in that
    order, as one Motif file ``dest``; returns how many. The first source gives the attributes and
    the other members; the sources' datasets must agree (``ExtraDataError`` names two that do not)."""
    h5py = import_h5py("writing Motif .extra_data.h5 files")
    first_fs, first = pieces[0][0], pieces[0][1]
    parts: List[Dict[str, np.ndarray]] = []
    layout: Optional[Dict[str, Any]] = None
    for fs, path, rows in pieces:
        try:
            with h5py.File(_h5_source(path, fs), "r") as f:
                shape = _members(f, path)
                if layout is not None and shape != layout:
                    raise ExtraDataError(
                        f"{first} and {path}: Motif extra data of different datasets or columns "
                        f"cannot go into one chunk of the new store ({_difference(layout, shape)})"
                    )
                layout = shape
                parts.append({name: _take(f[name], rows, name == CAMERA or name == SAMPLE_DELAY, path)
                              for name in shape})  # fmt: skip
        except ExtraDataError:
            raise
        except _H5_ERRORS as exc:
            raise ExtraDataError(f"{path}: not a Motif extra-data file ({exc})") from None
    assert layout is not None
    with h5py.File(_h5_source(first, first_fs), "r") as src, h5py.File(dest, "w") as out:
        _copy_attrs(src, out)
        for name in layout:
            axis = 0 if name in (CAMERA, SAMPLE_DELAY) else -1
            out.create_dataset(name, data=np.concatenate([p[name] for p in parts], axis=axis))
            _copy_attrs(src[name], out[name])
        for name in src.keys():
            if name not in out:  # settings and the like: as they are
                out.copy(src[name], name)
    return sum(len(rows) for _, _, rows in pieces)


def _members(f: Any, path: str) -> Dict[str, Any]:
    """What must agree between files merged into one: each sampled member's dtype, shape but for
    the samples' axis, and columns."""
    names = [*_split_names(f.attrs["datasets"]), CAMERA, SAMPLE_DELAY]
    found: Dict[str, Any] = {}
    for name in names:
        dataset = f[name]
        columns = _attr_text(dataset.attrs["column_names"]) if "column_names" in dataset.attrs else None
        kept_shape = dataset.shape[1:] if name in (CAMERA, SAMPLE_DELAY) else dataset.shape[:-1]
        found[name] = (str(dataset.dtype), kept_shape, columns)
    return found


def _difference(a: Dict[str, Any], b: Dict[str, Any]) -> str:
    if a.keys() != b.keys():
        return f"datasets {sorted(a)} and {sorted(b)}"
    name = next(n for n in a if a[n] != b[n])
    return f"{name}: {a[name]} and {b[name]}"


def _take(dataset: Any, rows: np.ndarray, first_axis: bool, path: str) -> np.ndarray:
    values = _h5_array(dataset, path)
    return values[rows] if first_axis else values[..., rows]


def _copy_attrs(source: Any, target: Any) -> None:
    """Every attribute with its stored type (Motif's byte strings stay byte strings: upstream decodes them)."""
    for name in source.attrs:
        target.attrs.create(name, source.attrs[name], dtype=source.attrs.get_id(name).dtype)
