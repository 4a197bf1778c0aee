"""Resident memory of this process, from /proc/self/status (Linux)."""

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
