"""
Where the package writes and reads, made safe for the user's files:

- an output folder is never the input, inside it or around it (`check_apart`);
- it is built in a temporary sibling and swapped in with one atomic rename (`write_folder`), so a kill at any moment
  leaves either the old complete folder or the new one, and nothing else is touched;
- an existing folder is replaced only when asked and only if this package wrote it (its `MARKER` file);
- a path built from data (an id, a fold value) stays inside its root (`path_inside`), symlinks included.
"""

import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path


MARKER = ".gia-mic-output.json"


class UnsafePathError(ValueError):
    """A path the package refuses to write, replace or read; the message names it and says why."""


def path_inside(root: str | os.PathLike, relative: str | os.PathLike, what: str) -> Path:
    """
    `root / relative`, refused if it leads outside `root` (`..`, an absolute path, or a symlink pointing out).
    `what` names the data the path came from (e.g. "clip 'abc_1'"), for the error message.
    """
    candidate = Path(root) / relative
    if not candidate.resolve().is_relative_to(Path(root).resolve()):
        raise UnsafePathError(f"{what}: {os.fspath(relative)!r} leads outside {root}")
    return candidate


def check_apart(
    output: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None], inside_allowed: bool = False
) -> None:
    """
    Refuse an output folder that is or contains one of the named inputs, or lies inside one (unless
    `inside_allowed`: a dataset built into a subfolder of the corpus leaves the corpus's own files alone).
    """
    target = Path(output).resolve()
    for name, source in inputs.items():
        if source is None:
            continue
        source_path = Path(source).resolve()
        if target == source_path:
            relation = "is"
        elif target.is_relative_to(source_path) and not inside_allowed:
            relation = "lies inside"
        elif source_path.is_relative_to(target):
            relation = "contains"
        else:
            continue
        raise UnsafePathError(
            f"The output folder {output} {relation} the input {name} ({source}); choose a folder apart from it."
        )


def check_replaceable(output: str | os.PathLike, overwrite: bool, flag: str = "--overwrite") -> None:
    """
    An output may be written if it does not exist or is an empty folder; an existing non-empty folder only with
    `overwrite` and only if this package wrote it (it holds `MARKER`). Anything else is refused before any work.
    """
    path = Path(output)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir() or path.is_symlink():
        raise UnsafePathError(f"The output {output} exists and is not a folder; choose another path.")
    if not any(path.iterdir()):
        return
    if not (path / MARKER).is_file():
        raise UnsafePathError(
            f"The output folder {output} is not empty and was not written by gia-mic (no {MARKER}); it is left "
            "untouched: choose another folder, or empty it yourself."
        )
    if not overwrite:
        raise UnsafePathError(f"The output folder {output} exists from an earlier run; pass {flag} to replace it.")


def write_folder(
    output: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool, written_by: str
) -> Path:
    """
    Build a folder with `write(staging)` in a temporary sibling of `output`, then put it in place atomically: a kill
    at any point leaves the previous folder complete (or no folder) or the new one complete. The folder is marked as
    ours so a later run may replace it; `check_replaceable` decides whether an existing `output` may go.
    """
    output = Path(output)
    check_replaceable(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        write(staging)
        (staging / MARKER).write_text(json.dumps({"written_by": written_by}) + "\n", encoding="utf-8")
        check_replaceable(output, overwrite)  # again: the folder may have changed during a long build
        if output.is_dir() and _exchange(staging, output):
            shutil.rmtree(staging)  # now the previous output
        else:
            if output.is_dir():  # an empty folder, or a system without an atomic exchange
                previous = Path(tempfile.mkdtemp(prefix=f".{output.name}.previous-", dir=output.parent))
                os.rename(output, previous / output.name)
                os.rename(staging, output)
                shutil.rmtree(previous)
            else:
                os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))
