"""Running console tools as subprocesses in tests: several at once, since start-up time dominates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, List, Optional


def tool(name: str) -> str:
    """Path of an installed console script (next to this interpreter)."""
    return str(Path(sys.executable).parent / name)


def run_parallel(
    program: str, *commands: List[Any], timeout: float = 120, env: Optional[dict] = None
) -> List[subprocess.CompletedProcess]:
    """Run ``program`` once per argument list, all at once; results in the order given."""
    procs = [
        subprocess.Popen([program, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for args in commands
    ]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            proc.kill()
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def interrupt_once_started(command: List[Any], started: Path, settle: float = 0.0, timeout: float = 60) -> tuple:
    """Run ``command``; press Ctrl-C (SIGINT) once the path ``started`` exists (and ``settle`` seconds
    more); its exit status and stderr. Fails the test when the command ends before that."""
    import signal
    import time

    proc = subprocess.Popen([str(a) for a in command], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not started.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{command[0]} ended (or took too long) before it could be interrupted")
        time.sleep(0.02)
    time.sleep(settle)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stderr
