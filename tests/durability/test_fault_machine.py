"""Atomicity as a property: random sequences of calls, faults and kills, checked against a model.

A hypothesis state machine drives a store writer running in a worker under the fault-injection
shim (``faultinject.Session``): good frames, bad calls (a frame number that is a boolean or does
not fit in 64 bits, a wrong shape, a time that is text), extra data, ``flush()``, faults armed
for the N-th next file-system operation (a full disk, an I/O error, a read-only file system),
and at the end ``close()`` or a SIGKILL. The model keeps what the library said: frames accepted,
frames an error named lost, frames flushed. The reopened store must then hold

- after ``close()`` (successful or not): exactly the accepted frames minus the lost ones;
- after a kill: no frame that was not accepted or was reported lost, every frame flushed
  before (but those a video encoder holds back), and each frame it holds whole and in order;

and every frame read carries its own pixels, number and time. A bad call never changes a thing.
``IMGSTORE_MACHINE_EXAMPLES`` sets the sequences tried per format (default 12).
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import List, Set

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import imgstore

from faultinject import FIRST_NUMBER, T0, FaultServer, Session
from framecodes import decode_grid
from test_crash_safety import ENCODER_HOLDBACK

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD fault injection is Linux only")

EXAMPLES = int(os.environ.get("IMGSTORE_MACHINE_EXAMPLES", "12"))
FORMATS = ["npy", "png", "mjpeg/avi", "avc1/mp4", "ffv1/mkv"]
BAD_CALLS = ["number", "boolean", "shape", "time"]
SHAPE = (32, 48)


def machine_for(server: FaultServer, fmt: str) -> type:
    names = itertools.count()

    class StoreMachine(RuleBasedStateMachine):
        """One recording: calls, faults, then close or a kill; the store checked against the model."""

        def __init__(self) -> None:
            super().__init__()
            self.session = Session(server, fmt, f"{fmt.replace('/', '_')}-{next(names)}", SHAPE, chunksize=5)
            self.next_frame = 0
            self.accepted: List[int] = []
            self.lost: Set[int] = set()
            self.flushed: Set[int] = set()
            self.ending = "close"  # or "kill": how the recording ends (chosen by hypothesis)
            self.foreign: List[str] = []

        def _note(self, reply: dict, what: str) -> bool:
            if not reply["ok"]:
                if not reply["ours"]:
                    self.foreign.append(f"{what}: {reply['message']}")
                self.lost.update(reply["lost"])
            return reply["ok"]

        @rule(count=st.integers(1, 7))
        def add_frames(self, count: int) -> None:
            for _ in range(count):
                i = self.next_frame
                self.next_frame += 1
                if self._note(self.session.call(op="add", i=i), f"add_image({i})"):
                    self.accepted.append(i)

        @rule(kind=st.sampled_from(BAD_CALLS))
        def add_a_bad_frame(self, kind: str) -> None:
            reply = self.session.call(op="add", i=self.next_frame, bad=kind)
            assert not reply["ok"] and reply["ours"], f"a {kind} frame: {reply}"
            assert not reply["lost"], f"a refused {kind} frame lost frames: {reply}"

        @rule()
        def add_extra_data(self) -> None:
            self._note(self.session.call(op="extra", i=self.next_frame), "add_extra_data")

        @rule()
        def flush(self) -> None:
            if self._note(self.session.call(op="flush"), "flush()"):
                self.flushed = set(self.accepted) - self.lost

        @rule(n=st.integers(1, 25), err=st.sampled_from(["ENOSPC", "EIO", "EROFS"]), sticky=st.booleans())
        def fault(self, n: int, err: str, sticky: bool) -> None:
            assert self.session.call(op="arm", n=n, err=err, sticky=sticky)["ok"]

        @rule()
        def disk_recovers(self) -> None:
            assert self.session.call(op="disarm")["ok"]

        @initialize(ending=st.sampled_from(["close", "kill"]))
        def choose_how_it_ends(self, ending: str) -> None:
            self.ending = ending

        @invariant()
        def only_our_errors(self) -> None:
            assert not self.foreign, "\n".join(self.foreign)

        def teardown(self) -> None:
            if self.ending == "close":
                self._note(self.session.call(op="close"), "close()")
                self.session.end()
            else:
                self.session.kill()
            assert not self.foreign, "\n".join(self.foreign)
            path = self.session.path
            kept = [i for i in self.accepted if i not in self.lost]
            if not (path / "metadata.yaml").exists():
                assert not kept, f"no store, although frames {kept} were accepted"
                return
            with imgstore.new_for_filename(str(path)) as store:
                read = []
                for position in range(store.frame_count):
                    img, (number, ftime) = store.get_image(None, frame_index=position)
                    i = number - FIRST_NUMBER
                    assert decode_grid(img) == i and ftime == T0 + i / 25.0, f"position {position}"
                    read.append(i)
            if self.ending == "close":
                assert read == kept, f"read {read}, the model says {kept} (lost {sorted(self.lost)})"
            else:
                assert set(read) <= set(kept) and read == sorted(read), f"read {read}, kept {kept}"
                missing = sorted(self.flushed - set(read))
                assert len(missing) <= ENCODER_HOLDBACK.get(fmt, 0), f"flushed frames lost at a kill: {missing}"

    return StoreMachine


@pytest.mark.parametrize("fmt", FORMATS)
def test_calls_faults_and_kills_match_the_model(fault_server: FaultServer, fmt: str) -> None:
    run_state_machine_as_test(
        machine_for(fault_server, fmt),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
