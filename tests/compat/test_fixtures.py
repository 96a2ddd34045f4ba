"""Replay each fixture store's plan and compare with what upstream imgstore 0.4.0 answered.

Every set of fixture stores is replayed (``conftest.py``): the one upstream writes at test time
(``upstream_fixtures.py``) and ``../shared/fixtures`` where it exists. The plan and the answers
are described in ``upstream_scripts/fixture_stores.py`` (the schema of
``../shared/fixtures/README.md``). Each test collects every mismatch of its part of the plan and
reports them together.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pytest
import yaml

import imgstore
import imgstore.stores

from framecodes import compare_digest, digest

VIDEO_CLASSES = ("VideoImgStore", "VideoImgStoreFFMPEG")
VIDEO_SKIP_REASON = "video chunks: issue 3 (PyAV video stores)"
VIDEO_PROBE_FORMAT = "avc1/mp4"
PROBE_ZONES = ("UTC", "Asia/Tokyo", "America/Los_Angeles")
METADATA_FILE = "metadata.yaml"
PROPS_CHECKED_ELSEWHERE = ("class_mro", "created", "len")


@dataclass(frozen=True)
class Case:
    """One fixture store: its directory, the plan to replay and upstream's answers."""

    name: str
    store_dir: Path
    plan: dict
    expected: dict
    store_class: str

    @property
    def lossy(self) -> bool:
        """Whether images are compared by the lossy rules."""
        return bool(self.plan["lossy"])

    @property
    def is_video(self) -> bool:
        """Whether the store's metadata names a video store class."""
        return self.store_class in VIDEO_CLASSES


class Mismatches:
    """Collects failed checks so that a test reports every difference at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    @contextlib.contextmanager
    def check(self, label: str) -> Iterator[None]:
        """Record an AssertionError raised inside the block under ``label`` and carry on."""
        try:
            yield
        except AssertionError as exc:
            self.items.append(f"{label}: {exc}")

    def report(self) -> None:
        """Fail the test listing all recorded mismatches, if any."""
        if self.items:
            pytest.fail(
                f"{len(self.items)} mismatch(es):\n" + "\n".join(self.items),
                pytrace=False,
            )


@dataclass
class Outcome:
    """What one call into the store gave: a result or an exception, and ``store.frame_number`` after it."""

    result: Any = None
    error: BaseException | None = None
    attr_frame_number: Any = None


# ---------------------------------------------------------------------------------------------
# loading cases


def load_case(fixtures_dir: Path, name: str) -> Case:
    """Read ``<name>.expected.json`` and the store class from the store's metadata."""
    answers = json.loads((fixtures_dir / f"{name}.expected.json").read_text(encoding="utf-8"))
    store_dir = fixtures_dir / name
    metadata = yaml.safe_load((store_dir / METADATA_FILE).read_text(encoding="utf-8"))
    return Case(
        name,
        store_dir,
        answers["plan"],
        answers["expected"],
        metadata["__store"]["class"],
    )


@pytest.fixture
def case(fixtures_dir: Path, fixture_name: str) -> Case:
    """The fixture store under test; video stores are skipped until video chunks are supported."""
    loaded = load_case(fixtures_dir, fixture_name)
    if loaded.is_video and VIDEO_PROBE_FORMAT not in imgstore.get_supported_formats():
        pytest.skip(VIDEO_SKIP_REASON)
    return loaded


@contextlib.contextmanager
def open_store(path: Path) -> Iterator[Any]:
    """Open a store for reading with ``new_for_filename`` and close it afterwards."""
    store = imgstore.new_for_filename(str(path))
    try:
        yield store
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# value comparison


def plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and mappings turned into plain JSON-like Python."""
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def assert_same(actual: Any, expected: Any, where: str = "value") -> None:
    """Assert JSON-level equality with matching kinds (bool/int/float/str), NaN equal to NaN."""
    a = plain(actual)
    if isinstance(expected, dict):
        assert isinstance(a, dict), f"{where}: got {type(actual).__name__} {a!r}, expected a mapping"
        assert set(a) == set(expected), f"{where}: keys {sorted(map(str, a))} != expected {sorted(expected)}"
        for key, value in expected.items():
            assert_same(a[key], value, f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(a, list), f"{where}: got {type(actual).__name__} {a!r}, expected a sequence"
        assert len(a) == len(expected), f"{where}: length {len(a)} != expected {len(expected)}"
        for i, (item, value) in enumerate(zip(a, expected)):
            assert_same(item, value, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(a, float), f"{where}: got {type(actual).__name__} {a!r}, expected float {expected!r}"
        assert a == expected or (math.isnan(a) and math.isnan(expected)), f"{where}: got {a!r}, expected {expected!r}"
    elif isinstance(expected, int):  # also bool: the kind must match exactly
        assert type(a) is type(expected), f"{where}: got {type(actual).__name__} {a!r}, expected {expected!r}"
        assert a == expected, f"{where}: got {a!r}, expected {expected!r}"
    else:
        assert a == expected, f"{where}: got {a!r}, expected {expected!r}"


def assert_raised(error: BaseException | None, expected: dict) -> None:
    """Assert that ``error`` is an instance of the expected first class and contains upstream's message."""
    name, message = expected["raises"][0], expected["message"]
    assert error is not None, f"expected {name}({message!r}), but the call returned normally"
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        ok = isinstance(error, cls)
    else:
        ok = name in [c.__name__ for c in type(error).__mro__]
    assert ok, f"raised {type(error).__name__}({error}), expected an instance of {name}"
    assert message in str(error), f"message {str(error)!r} does not contain upstream's {message!r}"


def describe_error(error: BaseException) -> str:
    """``Type: message`` of an exception, for assertion messages."""
    return f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------------------------------------
# reads


def attempt(store: Any, call: Callable[[], Any]) -> Outcome:
    """Run ``call`` and read ``store.frame_number`` immediately afterwards."""
    try:
        result = call()
    except Exception as exc:
        return Outcome(error=exc, attr_frame_number=getattr(store, "frame_number", None))
    return Outcome(result=result, attr_frame_number=store.frame_number)


def assert_image_matches(img: Any, expected_digest: dict, case: Case) -> None:
    """Assert that an image matches a recorded digest by the store's comparison rules."""
    assert isinstance(img, np.ndarray), f"image is {type(img).__name__}, expected numpy.ndarray"
    actual = digest(img, case.lossy, case.plan["code_scheme"])
    compare_digest(actual, expected_digest, case.lossy, float(case.plan["tolerance"]))


def assert_read_matches(outcome: Outcome, expected: dict, case: Case) -> None:
    """Assert that a read's image, frame number/time and ``store.frame_number`` match (or the raise does)."""
    if "raises" in expected:
        assert_raised(outcome.error, expected)
        return
    assert outcome.error is None, f"raised {describe_error(outcome.error)}; expected frame {expected['frame_number']}"
    assert isinstance(outcome.result, tuple) and len(outcome.result) == 2, (
        f"returned {type(outcome.result).__name__}, expected (img, (frame_number, frame_time))"
    )
    img, (frame_number, frame_time) = outcome.result
    assert_same(frame_number, expected["frame_number"], "frame_number")
    assert_same(frame_time, expected["frame_time"], "frame_time")
    assert_same(
        outcome.attr_frame_number,
        expected["attr_frame_number"],
        "store.frame_number after the call",
    )
    assert_image_matches(img, expected["digest"], case)


def replay_reads(
    found: Mismatches,
    store: Any,
    case: Case,
    label: str,
    calls: list[tuple[Any, Callable[[], Any]]],
    answers: list[dict],
) -> None:
    """Run each ``(query, call)`` in order and compare it with the answer of the same position."""
    with found.check(f"{label}: number of answers"):
        assert len(calls) == len(answers), f"plan has {len(calls)} queries, answers {len(answers)}"
    for (query, call), expected in zip(calls, answers):
        outcome = attempt(store, call)
        with found.check(f"{label}[{query!r}]"):
            assert_read_matches(outcome, expected, case)


# ---------------------------------------------------------------------------------------------
# created


def tz_names(tz: Any) -> set[str]:
    """Names a tzinfo goes by: ``str(tz)`` and, for ZoneInfo, ``tz.key``."""
    names = {str(tz)}
    key = getattr(tz, "key", None)
    if key:
        names.add(str(key))
    return names


def expected_created(case: Case, local_zone: str | None) -> dict:
    """The expected ``created`` summary; for the 'mtime' rule, from metadata.yaml's mtime now.

    ``local_zone`` is the zone the reader runs in (None: unknown, the zone name is then checked by offset).
    """
    recorded = case.expected["props"]["created"]
    if case.plan["created_rule"] == "stored":
        return {k: recorded[k] for k in ("aware", "utc", "utcoffset_s", "tz_names")}
    assert case.plan["created_rule"] == "mtime", f"unknown created_rule {case.plan['created_rule']!r}"
    mtime = os.path.getmtime(case.store_dir / METADATA_FILE)
    utc = datetime.datetime.fromtimestamp(mtime, tz=datetime.UTC)
    return {
        "aware": True,
        "utc": utc.isoformat(),
        "utcoffset_s": 0.0,
        "tz_names": [local_zone] if local_zone else None,
    }


def assert_created_matches(dt: Any, names: set[str], tz: Any, expected: dict) -> None:
    """Assert an aware datetime of the expected UTC instant and offset, and a zone of an expected name.

    With no expected names (local zone unknown), ``tz`` must have this machine's offset at that instant.
    """
    assert isinstance(dt, datetime.datetime), f"created[0] is {type(dt).__name__}, expected datetime"
    aware = dt.tzinfo is not None and dt.utcoffset() is not None
    assert aware == expected["aware"], f"created[0] aware={aware}, expected {expected['aware']}"
    utc = dt.astimezone(datetime.UTC).isoformat()
    assert utc == expected["utc"], f"created[0] is {utc} in UTC, expected {expected['utc']}"
    offset = dt.utcoffset().total_seconds()
    assert offset == expected["utcoffset_s"], f"created[0] utcoffset {offset}s, expected {expected['utcoffset_s']}s"
    if expected["tz_names"] is not None:
        assert names & set(expected["tz_names"]), f"created[1] is {sorted(names)}, expected {expected['tz_names']}"
    else:
        local = dt.astimezone().utcoffset()
        assert dt.astimezone(tz).utcoffset() == local, f"created[1] {sorted(names)} is not the local zone ({local})"


def current_tz_env() -> str | None:
    """The IANA zone named by ``$TZ`` (without a leading ':'), or None when unset or not IANA."""
    value = os.environ.get("TZ", "").lstrip(":")
    try:
        return ZoneInfo(value).key if value else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


CREATED_PROBE = """
import json, sys
import imgstore
out = {}
for path in sys.argv[2:]:
    try:
        store = imgstore.new_for_filename(path)
        try:
            dt, tz = store.created
        finally:
            store.close()
        out[path] = {"dt": dt.isoformat(), "tz_str": str(tz), "tz_key": getattr(tz, "key", None)}
    except Exception as exc:
        out[path] = {"error": "%s: %s" % (type(exc).__name__, exc)}
with open(sys.argv[1], "w") as fh:
    json.dump(out, fh)
"""


def probe_created_in_zone(zone: str, store_dirs: list[Path], workdir: Path) -> dict:
    """``store.created`` of each store, read by a fresh interpreter (the same imgstore) with ``TZ=zone``."""
    out_file = workdir / f"created-{zone.replace('/', '_')}.json"
    package_parent = str(Path(imgstore.__file__).resolve().parent.parent)
    env = dict(os.environ, TZ=zone)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-c", CREATED_PROBE, str(out_file)] + [str(d) for d in store_dirs]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"created probe with TZ={zone} failed:\n{proc.stderr}", pytrace=False)
    return json.loads(out_file.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def created_by_zone(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict]:
    """A cached lookup: zone -> {store dir: created as read in that zone}, one subprocess per zone."""
    cache: dict[str, dict] = {}
    names = sorted(p.name[: -len(".expected.json")] for p in fixtures_dir.glob("*.expected.json"))

    def lookup(zone: str) -> dict:
        if zone not in cache:
            workdir = tmp_path_factory.mktemp("created")
            cache[zone] = probe_created_in_zone(zone, [fixtures_dir / n for n in names], workdir)
        return cache[zone]

    return lookup


# ---------------------------------------------------------------------------------------------
# the plan, part by part


def check_props(found: Mismatches, store: Any, case: Case) -> None:
    """Compare the properties read right after opening, in the recorded order."""
    props = case.expected["props"]
    expected_class = props["class_mro"][0]
    with found.check("class"):
        assert type(store).__name__ == expected_class, f"got {type(store).__name__}, expected {expected_class}"
        public = getattr(imgstore.stores, expected_class)
        assert isinstance(store, public), f"{type(store).__name__} is not an imgstore.stores.{expected_class}"
    for name, value in props.items():
        if name in PROPS_CHECKED_ELSEWHERE:
            continue
        with found.check(f"props.{name}"):
            try:
                actual = getattr(store, name)
            except Exception as exc:  # a failing property is a mismatch like any other
                raise AssertionError(f"raised {describe_error(exc)}") from exc
            assert_same(actual, value, name)
    with found.check("len(store)"):
        assert_same(len(store), props["len"], "len")


def check_frame_metadata(found: Mismatches, store: Any, case: Case) -> None:
    """Compare ``get_frame_metadata()``."""
    with found.check("get_frame_metadata()"):
        assert_same(
            store.get_frame_metadata(),
            case.expected["frame_metadata"],
            "frame_metadata",
        )


def check_extra_data(found: Mismatches, store: Any, case: Case) -> None:
    """Compare ``get_extra_data()`` as its columns and ``to_dict(orient='records')``."""
    expected = case.expected["extra_data"]
    with found.check("get_extra_data()"):
        df = store.get_extra_data()
        if expected is None:
            assert df is None, f"got {type(df).__name__}, expected None"
            return
        assert df is not None, "got None, expected a DataFrame"
        assert_same([str(c) for c in df.columns], expected["columns"], "columns")
        assert_same(df.to_dict(orient="records"), expected["records"], "records")


def seek_call(store: Any, seek: list) -> Callable[[], Any]:
    """The call that performs a ``seek_then_next`` seek: by frame_index, frame_number or frame_time."""
    kind, value = seek
    if kind == "frame_index":
        return lambda: store.get_image(None, frame_index=value)
    if kind == "frame_number":
        return lambda: store.get_image(value)
    if kind == "frame_time":
        return lambda: store.get_nearest_image(value)
    raise ValueError(f"unknown seek kind {kind!r}")


def check_seeks(found: Mismatches, store: Any, case: Case) -> None:
    """Replay each seek followed by ``n_next`` calls of ``get_next_image()``."""
    for step, answer in zip(case.plan["seek_then_next"], case.expected["seek_then_next"]):
        label = f"seek_then_next[{step['seek'][0]}={step['seek'][1]!r}]"
        outcome = attempt(store, seek_call(store, step["seek"]))
        with found.check(f"{label} seek"):
            assert_read_matches(outcome, answer["first"], case)
        for i, expected in enumerate(answer["next"]):
            outcome = attempt(store, store.get_next_image)
            with found.check(f"{label} next #{i + 1}"):
                assert_read_matches(outcome, expected, case)
        with found.check(f"{label}: n_next"):
            assert step["n_next"] == len(answer["next"]), "plan and answers disagree on n_next"


def test_open_and_read_sequentially(case: Case) -> None:
    """Plan part 1: open via the directory, properties, metadata, extra data, every frame, then EOFError."""
    found = Mismatches()
    with open_store(case.store_dir) as store:
        check_props(found, store, case)
        check_frame_metadata(found, store, case)
        check_extra_data(found, store, case)
        count = int(case.plan["frame_count"])
        calls = [(i, store.get_next_image) for i in range(count)]
        replay_reads(found, store, case, "get_next_image", calls, case.expected["sequential"])
        with found.check("get_next_image past the end"):
            assert_read_matches(
                attempt(store, store.get_next_image),
                case.expected["sequential_end"],
                case,
            )
    found.report()


def test_random_access(case: Case) -> None:
    """Plan part 2: open via metadata.yaml; lookups by index, number, nearest number and time; seeks."""
    found = Mismatches()
    plan, answers = case.plan, case.expected
    with open_store(case.store_dir / METADATA_FILE) as store:
        with found.check("frame_count (opened via metadata.yaml)"):
            assert_same(store.frame_count, answers["open_via_yaml_frame_count"], "frame_count")

        def by_index(i: int) -> Callable[[], Any]:
            return lambda: store.get_image(None, exact_only=True, frame_index=i)

        def by_number(n: int, exact: bool) -> Callable[[], Any]:
            return lambda: store.get_image(n, exact_only=exact)

        def by_time(t: float) -> Callable[[], Any]:
            return lambda: store.get_nearest_image(t)

        parts = [
            ("by_index", "index_order", by_index),
            ("by_number", "by_number", lambda n: by_number(n, True)),
            ("nearest_number", "nearest_number", lambda n: by_number(n, False)),
            ("missing_number", "missing_number", lambda n: lambda: store.get_image(n)),
            (
                "bad_index",
                "bad_index",
                lambda i: lambda: store.get_image(None, frame_index=i),
            ),
            ("nearest_time", "nearest_time", by_time),
        ]
        for label, plan_key, make_call in parts:
            calls = [(q, make_call(q)) for q in plan[plan_key]]
            replay_reads(found, store, case, label, calls, answers[label])
        check_seeks(found, store, case)
    found.report()


def test_extract_only_frame(case: Case) -> None:
    """Plan part 3: ``imgstore.extract_only_frame(path, i)`` via the directory or metadata.yaml."""
    found = Mismatches()
    for (index, via), answer in zip(case.plan["extract_only"], case.expected["extract_only"]):
        path = case.store_dir if via == "dir" else case.store_dir / METADATA_FILE
        with found.check(f"extract_only_frame({via}, {index})"):
            try:
                img = imgstore.extract_only_frame(str(path), index)
            except Exception as exc:  # compared with the recorded raise, if any
                if "raises" not in answer:
                    raise AssertionError(f"raised {describe_error(exc)}") from exc
                assert_raised(exc, answer)
                continue
            assert "raises" not in answer, f"returned an image, expected {answer.get('raises', [''])[0]}"
            assert_image_matches(img, answer["digest"], case)
    found.report()


def test_created(case: Case) -> None:
    """``store.created`` in this process's zone: the recorded UTC instant and zone (or mtime-derived)."""
    expected = expected_created(case, current_tz_env())
    with open_store(case.store_dir) as store:
        created = store.created
    assert isinstance(created, tuple) and len(created) == 2, f"created is {created!r}, expected (datetime, tzinfo)"
    dt, tz = created
    assert_created_matches(dt, tz_names(tz), tz, expected)


@pytest.mark.parametrize("zone", PROBE_ZONES)
def test_created_in_zone(case: Case, zone: str, created_by_zone: Callable[[str], dict]) -> None:
    """``store.created`` read by a process whose local zone is ``zone``: the same instant in any zone."""
    got = created_by_zone(zone)[str(case.store_dir)]
    assert "error" not in got, f"reading created with TZ={zone} raised {got.get('error')}"
    dt = datetime.datetime.fromisoformat(got["dt"])
    names = {got["tz_str"]} | ({got["tz_key"]} if got["tz_key"] else set())
    expected = expected_created(case, zone)
    assert_created_matches(dt, names, None, expected)
