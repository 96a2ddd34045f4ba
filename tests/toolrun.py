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
