"""How every command reports a mistake in the user's input or files: one line and exit status 2, not a traceback."""

import os
import sys
from collections.abc import Callable
from typing import Any


def run_reporting_errors(call: Callable[[], Any]) -> Any:
    """Run `call`; a ValueError or OSError becomes `error: <message>` on one line, exit 2 (GIA_MIC_DEBUG=1: raise)."""
    try:
        return call()
    except (ValueError, OSError) as error:
        if os.environ.get("GIA_MIC_DEBUG"):
            raise
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        raise SystemExit(2) from None
