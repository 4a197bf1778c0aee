"""
The processes `accelerate launch` started (one alone otherwise), and work shared between them by size: what
`gia-mic analyze` (recordings) and `gia-mic extract-features` (shards of rows) split across processes, GPUs and
machines.
"""

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TypeVar

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env


Work = TypeVar("Work")


def processes() -> PartialState:
    """
    This process among those `accelerate launch` started (one alone otherwise): processes on CPUs where asked
    (`ACCELERATE_USE_CPU=1`) or where there is no accelerator, else one per device.
    """
    accelerator = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    # A process waits for the others at the end, however long their work: a day, not torch's 30 minutes.
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not accelerator, timeout=timedelta(days=1))


def balanced(work: Sequence[Work], size: Callable[[Work], float], count: int) -> list[list[Work]]:
    """`work` split into `count` parts: largest first, each piece to the part with the least so far (of equal
    loads, the one with fewer pieces: work of unknown size is shared too)."""
    loads, parts = [0.0] * count, [[] for _ in range(count)]
    for piece in sorted(work, key=lambda piece: -size(piece)):
        least = min(range(count), key=lambda part: (loads[part], len(parts[part])))
        parts[least].append(piece)
        loads[least] += size(piece)
    return parts
