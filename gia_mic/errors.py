"""How every command reports a mistake in the user's input or files: one line and exit status 2, not a traceback."""

import argparse
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
        print(f"error: {one_line(error)}", file=sys.stderr)
        raise SystemExit(2) from None


def one_line(error: BaseException) -> str:
    """An error's message on one line (its type's name where it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


class OneLineErrors:
    """For an `argparse.ArgumentParser` (sub)class: a usage error is one line `error: PROG: ...`, exit status 2."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


class ArgumentParser(OneLineErrors, argparse.ArgumentParser):
    """The package's command-line parser: argparse's, with one-line usage errors."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more; got {text!r}")
    return value
