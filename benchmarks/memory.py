"""Resident memory of a process, from /proc/self/status (Linux), and the peak growth of one step in a fresh process."""

import json
import subprocess
import sys
from pathlib import Path


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """
    The peak since this program started (VmHWM). Not `getrusage().ru_maxrss`: Linux carries that over from the parent
    through fork and exec, so a child started by a large benchmark process would report the parent's peak.
    """
    return _status_mib("VmHWM")


def peak_growth_in_fresh_process(setup: str, step: str) -> float:
    """
    Peak RSS growth (MiB) while `step` runs, measured from after `setup`, in a new Python process that holds only what
    `setup` builds. Both are Python source run with this folder on the path (the benchmark modules import as such).
    """
    folder = Path(__file__).resolve().parent
    script = (
        f"import json, sys; sys.path.insert(0, {str(folder)!r}); import memory\n"
        f"{setup}\nbase = memory.rss_mib()\n{step}\n"
        "print(json.dumps(memory.peak_rss_mib() - base))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=folder.parent
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1]))
