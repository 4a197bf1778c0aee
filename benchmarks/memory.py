"""Resident memory of a process, from /proc/self/status (Linux), and the peak growth of one step in a fresh process."""

import json
import subprocess
import sys
import threading
import time
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


class AnonymousPeak:
    """
    The peak of the process's anonymous resident memory (RssAnon: heap, arrays) while the block runs, sampled every
    10 ms. Unlike VmHWM it leaves out file pages the process maps (Arrow files read through mmap), which the kernel
    reclaims at will and which grow with the files, not with what the process holds.
    """

    def __enter__(self) -> "AnonymousPeak":
        self.mib, self._running = _status_mib("RssAnon"), True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.mib = max(self.mib, _status_mib("RssAnon"))
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join()
        self.mib = max(self.mib, _status_mib("RssAnon"))


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
