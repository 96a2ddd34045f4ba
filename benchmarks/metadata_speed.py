"""``get_frame_metadata()`` on the 1-week store against its limit: numpy's ``tolist()`` of the columns.

    python benchmarks/metadata_speed.py [--processes 3] [--rounds 3] [--dir DIR] [--quick]

Measures the imgstore of the checkout it lives in. The one workload of ``run.py``'s "1-week
store: index only" section that has a limit, on its own: ``--processes`` fresh processes
(``worker.py``'s ``open`` job) each open the 15.1-million-frame store with its index cache, call
``get_frame_metadata()`` once (the first call, as a user makes it), then ``--rounds`` times call
it again and time numpy's ``tolist()`` of the two columns concatenated from the chunk index files
(read with ``np.load`` beforehand), in turn, the order alternating. Both give lists of Python
``int`` and ``float``; the worker checks they are equal. The table gives seconds (median and
range) and ours' speed as a fraction of the limit's, measured in the same round. ``--quick``
uses a 60,000-frame store: a smoke test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run import FULL, OUR_CACHE_DIR_NAME, QUICK, Worker, build_long_stores  # noqa: E402


def span(values, digits: int) -> str:
    """``median (min-max)`` of ``values``."""
    f = f"{{:.{digits}f}}".format
    return f(statistics.median(values)) + (f" ({f(min(values))}-{f(max(values))})" if len(values) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in each process (default 3)")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "imgstore-bench"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    os.makedirs(args.dir, exist_ok=True)
    os.environ["IMGSTORE_CACHE_DIR"] = os.path.join(args.dir, OUR_CACHE_DIR_NAME)
    workdir = tempfile.mkdtemp(prefix="metadata-", dir=args.dir)
    ours = Worker("ours", sys.executable, workdir, checkout=os.path.dirname(HERE))
    path = build_long_stores(ours, args.dir, {**cfg, "long": {"1-week": cfg["long"]["1-week"]}}, False)["1-week"]
    ours.one("open", path=path)  # writes the index cache if there is none
    info = ours.one("info")
    load = os.getloadavg()[0]
    results = [ours.one("open", path=path, metadata=True, metadata_limit=args.rounds) for _ in range(args.processes)]
    first = [r["metadata_s"] for r in results]
    again = [t for r in results for t in r["metadata_rounds_s"]]
    limit = [t for r in results for t in r["metadata_limit_s"]]
    speeds = [lim / t for r in results for t, lim in zip(r["metadata_rounds_s"], r["metadata_limit_s"])]
    print(
        f"get_frame_metadata(), {results[0]['metadata_len']:,} frames: {args.processes} fresh processes, "
        f"{args.rounds} rounds each with tolist() in turn"
    )
    print(f"imgstore {info['version']} from {info['file']}")
    print(f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (2 cores)")
    print()
    print("| call | seconds, median (range) | speed as a fraction of tolist() in the same round |")
    print("| --- | --- | --- |")
    print(f"| get_frame_metadata(), first call after opening | {span(first, 3)} | |")
    print(f"| get_frame_metadata(), again | {span(again, 3)} | {span(speeds, 2)} |")
    print(f"| numpy tolist() of both columns (the limit) | {span(limit, 3)} | 1 |")
    print()
    same = all(r["metadata_limit_same"] for r in results)
    print(f"returns {results[0]['metadata_types']}; equal to tolist()'s lists: {'yes' if same else '!! NO'}")


if __name__ == "__main__":
    main()
