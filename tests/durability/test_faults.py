"""Fault injection at every write site (``faultinject``): no accepted frame is lost without an error.

For each format a clean recording is made once, counting the file-system operations its writer
makes in the store (writes, fsyncs, renames, closes, creations, in any library). Then the
recording is repeated with one of those operations failing: a full disk (ENOSPC for good, after
a short write), a transient I/O error (EIO once), a file system gone read-only (EROFS for good).
After each, the store must open and hold exactly the frames ``add_image`` accepted minus those an
error named lost, each with its own pixels, number and time; nothing ``add_image`` refused; and
no error that is not one of ours. By default a sample of the operations is failed (the first
ones, where the store is created, evenly spaced ones, the last ones, where it is closed);
``IMGSTORE_FAULT_EVERY=1`` fails each one in turn.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List

import pytest

import imgstore

from faultinject import Fault, FaultServer, Recording, build_shim, check, started_fault_server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD fault injection is Linux only")

EVERY = int(os.environ.get("IMGSTORE_FAULT_EVERY", "0"))
#: operations failed per format and kind of fault when not every one is
SAMPLES = 14
FORMATS = [f for f in imgstore.get_supported_formats() if "+color" not in f]
FAULT_KINDS = {
    "disk-full": ("ENOSPC", True, True),
    "io-error-once": ("EIO", False, False),
    "read-only": ("EROFS", True, False),
}


def _positions(total: int) -> List[int]:
    """Which operations to fail: every one, or the first and last few and evenly spaced ones."""
    if EVERY:
        return list(range(1, total + 1, EVERY))
    spaced = {round(1 + k * (total - 1) / (SAMPLES - 1)) for k in range(SAMPLES)}
    return sorted(spaced | set(range(1, min(total, 4) + 1)) | set(range(max(1, total - 2), total + 1)))


@pytest.mark.parametrize("kind", list(FAULT_KINDS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_accepted_frame_survives_or_is_reported_lost(fault_server: FaultServer, fmt: str, kind: str) -> None:
    err, sticky, partial = FAULT_KINDS[kind]
    rec = Recording(fmt, frames=16, chunksize=6, flush_at=(4, 11), extra_every=5)
    tag = f"{fmt.replace('/', '_')}-{kind}"
    clean = fault_server.run(rec, None, f"{tag}-clean")
    assert not check(rec, fault_server.watched / f"{tag}-clean", clean) and clean.accepted == list(range(rec.frames))
    assert clean.operations > 10, "the shim saw none of the writer's operations"
    problems, refused = [], 0
    for at in _positions(clean.operations):
        name = f"{tag}-{at}"
        out = fault_server.run(rec, Fault(at, err, sticky, partial), name)
        assert out.failures >= 1 or out.crashed, f"operation {at} of {clean.operations} was never reached"
        problems += [f"fault at operation {at}: {p}" for p in check(rec, fault_server.watched / name, out)]
        refused += len(out.refused)
        shutil.rmtree(fault_server.watched / name, ignore_errors=True)
    assert not problems, "\n".join(problems)
    assert refused, "no fault made add_image fail: the faults missed the writer"


def test_the_shim_fails_what_it_is_told(tmp_path: Path) -> None:
    """The harness itself: with the last operation failing, a writer sees exactly that failure."""
    try:
        shim = build_shim()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with started_fault_server(tmp_path, shim) as server:
        rec = Recording("npy", frames=6, chunksize=4, flush_at=(), extra_every=0)
        clean = server.run(rec, None, "clean")
        out = server.run(rec, Fault(clean.operations, "EIO", False, False), "last")
        assert clean.failures == 0 and out.failures == 1
        assert out.operations == clean.operations
