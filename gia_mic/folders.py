"""
Where the package writes and reads, made safe for the user's files. One rule for every command that writes
(`claim_output`), checked before any work:

- the output is never an input, inside one or around one (`check_apart`);
- an existing folder is replaced only with `--overwrite`, only if the same command wrote it (its `MARKER` file names
  the command and lists the files it wrote) and only if it holds nothing else (`check_replaceable`);
- the place it goes can be written (`check_writable`).

A folder is built in a temporary sibling and swapped in with one atomic rename (`write_folder`), so a kill at any
moment leaves either the old complete folder or the new one, and nothing else is touched. A single output file
(`claim_file`, `write_file`) follows the same rule: apart from the inputs, replaced only with `--overwrite` and only if
it is one the command writes (its first line says so), renamed into place. Training writes into its
folder as it goes (`claim_training_output`, `record_outputs`). A path built from data (an id, a fold value) stays
inside its root (`path_inside`), symlinks included. A folder written over a long run by many processes is `held` by
one run at a time. Folders follow the user's umask.
"""

import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


MARKER = ".gia-mic-output.json"
CHECKPOINT = re.compile(r"checkpoint-\d+")  # the Trainer's own folders, written while it trains


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


Inputs = Mapping[str, str | os.PathLike | None]  # what a command reads, by the option that names it


def check_model_source(source: str | os.PathLike, option: str) -> None:
    """A model given as a folder must exist: only `name` or `owner/name` is taken for a Hub id."""
    text = os.fspath(source)
    if os.path.exists(text):
        if not os.path.isdir(text):
            raise UnsafePathError(f"{option} {text}: a file, not a model folder.")
        return
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text:
        raise UnsafePathError(f"{option} {text}: no such model folder.")


def claim_output(output: str | os.PathLike, command: str, inputs: Inputs, overwrite: bool) -> None:
    """The one output rule of every command that writes a folder; raises `UnsafePathError` before any work."""
    check_apart(output, inputs)
    check_replaceable(output, command, overwrite)
    check_writable(output)


def check_apart(output: str | os.PathLike, inputs: Inputs) -> None:
    """Refuse an output folder that is one of the named inputs, contains one or lies inside one."""
    target = Path(output).resolve()
    for name, source in inputs.items():
        if source is None or not os.path.exists(source):  # a Hub id, or nothing given
            continue
        source_path = Path(source).resolve()
        if target == source_path:
            relation = "is"
        elif target.is_relative_to(source_path):
            relation = "lies inside"
        elif source_path.is_relative_to(target):
            relation = "contains"
        else:
            continue
        raise UnsafePathError(
            f"The output folder {output} {relation} the input {name} ({source}); choose a folder apart from it."
        )


def read_marker(folder: Path) -> dict:
    """The folder's marker, or {} where it has none or one that is not as this package writes it."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = marker.get("files") if isinstance(marker, dict) else None
    well_formed = isinstance(marker, dict) and isinstance(marker.get("command"), str) and isinstance(files, dict)
    return marker if well_formed else {}


def check_replaceable(output: str | os.PathLike, command: str, overwrite: bool) -> None:
    """
    An output may be written if it does not exist or is an empty folder; an existing non-empty folder only with
    `overwrite`, and only if `command` wrote it and it holds no file that `command` did not write.
    """
    path = Path(output)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir() or path.is_symlink():
        raise UnsafePathError(f"The output {output} exists and is not a folder; choose another path.")
    if not any(path.iterdir()):
        return
    marker = read_marker(path)
    if not marker:
        raise UnsafePathError(
            f"The output folder {output} is not empty and was not written by gia-mic (no {MARKER}); it is left "
            "untouched: choose another folder, or empty it yourself."
        )
    if marker.get("command") != command:
        raise UnsafePathError(
            f"The output folder {output} was written by `{marker.get('command', 'an earlier gia-mic')}`, not "
            f"`{command}`; it is left untouched: choose another folder."
        )
    check_only_written_files(path, marker, command)
    if not overwrite:
        raise UnsafePathError(
            f"The output folder {output} exists from an earlier run; pass --overwrite to replace it."
        )


def check_only_written_files(
    folder: Path, marker: dict, command: str, allow: Callable[[str], bool] | None = None
) -> None:
    """
    Refuse a folder holding a file or folder that `command` did not write, or a file whose size changed since
    (`allow`: the names that the command writes as it goes, such as the Trainer's checkpoints).
    """
    written = marker.get("files", {})
    for relative, size in sorted(listing(folder).items()):
        if (relative not in written or written[relative] != size) and not (allow and allow(relative)):
            raise UnsafePathError(
                f"The output folder {folder} holds {relative}, which `{command}` did not write (or it changed since); "
                "the folder is left untouched: choose another folder, or move that file out."
            )


def listing(folder: Path) -> dict[str, int | None]:
    """Every entry under `folder` but the marker: a file (or a symlink, not followed) with its size, a folder None."""
    found = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if relative != MARKER:
            found[relative] = None if path.is_dir() and not path.is_symlink() else path.lstat().st_size
    return found


def check_writable(output: str | os.PathLike) -> None:
    """The folder that will hold `output` exists or can be made, and a folder can be created in it."""
    parent = Path(os.path.abspath(output)).parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UnsafePathError(f"The output {output} cannot be made: {existing} is a file, not a folder.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".gia-mic-check-", dir=existing))
    except OSError as error:
        raise UnsafePathError(f"The output {output} cannot be written: {error.strerror} in {existing}.") from None


def write_folder(output: str | os.PathLike, write: Callable[[Path], None], *, command: str, overwrite: bool) -> Path:
    """
    Build a folder with `write(staging)` in a temporary sibling of `output`, then put it in place atomically: a kill
    at any point leaves the previous folder complete (or no folder) or the new one complete. The marker names
    `command` and lists the files written; `check_replaceable` decides whether an existing `output` may go.
    """
    output = Path(os.path.abspath(output))
    check_replaceable(output, command, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        os.chmod(staging, 0o777 & ~current_umask())
        try:
            write(staging)
        except OSError as error:
            if error.filename and str(staging) in str(error.filename):  # name the output, not the staging folder
                raise OSError(error.errno, f"cannot write {output}: {error.strerror}") from None
            raise
        write_marker(staging, command)
        check_replaceable(output, command, overwrite)  # again: the folder may have changed during a long build
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


def claim_file(output: str | os.PathLike, headers: tuple[str, ...], inputs: Inputs, overwrite: bool) -> None:
    """
    The output rule for one file, before any work: apart from the inputs; an existing file replaced only with
    `overwrite` and only if its first line is one of `headers` (a file this command writes, not the user's).
    """
    path = Path(output)
    if path.is_dir():
        raise UnsafePathError(f"The output {output} is a folder; give the path of a file.")
    check_apart(output, inputs)
    if path.exists() and not path.is_file():
        raise UnsafePathError(f"The output {output} exists and is not a regular file; choose another path.")
    if path.exists() or path.is_symlink():
        try:
            with open(path, encoding="utf-8") as handle:
                first = handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            first = None
        if first not in headers:
            raise UnsafePathError(
                f"The output {output} exists and was not written by this command; it is left untouched: choose "
                "another path."
            )
        if not overwrite:
            raise UnsafePathError(f"The output {output} exists from an earlier run; pass --overwrite to replace it.")
    check_writable(output)


def write_file(output: str | os.PathLike, text: str) -> None:
    """`text` written beside `output` and renamed onto it: a kill leaves the old file or the new one, whole."""
    output = Path(os.path.abspath(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.partial-", dir=output.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_marker(folder: Path, command: str) -> None:
    """The marker naming `command` and listing every file now in `folder`, written atomically."""
    text = json.dumps({"command": command, "files": listing(folder)}, indent=1) + "\n"
    temporary = folder / f"{MARKER}.tmp"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, folder / MARKER)


def claim_training_output(output_dir: str | os.PathLike, command: str, inputs: Inputs) -> None:
    """
    `train` and `cv` write into `output_dir` as they go (checkpoints, then the model): it must lie apart from the
    inputs and be new, empty, or a folder the same command wrote that holds nothing else (its own checkpoints may be
    there, to resume from). `mark_training_output` marks it when training starts.
    """
    check_apart(output_dir, inputs)
    folder = Path(output_dir)
    if folder.is_dir() and not folder.is_symlink() and any(folder.iterdir()):
        marker = read_marker(folder)
        if marker.get("command") != command:
            check_replaceable(folder, command, overwrite=True)  # the message for a foreign folder
        check_only_written_files(folder, marker, command, allow=written_while_training)
    elif folder.exists() or folder.is_symlink():
        check_replaceable(folder, command, overwrite=True)
    check_writable(folder)


def mark_training_output(output_dir: str | os.PathLike, command: str) -> None:
    """The claimed folder made and marked as `command`'s before its first checkpoint (kept as it is when resuming)."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / MARKER).is_file():
        write_marker(folder, command)


def written_while_training(relative: str) -> bool:
    """A checkpoint folder of the Trainer's, or anything inside one."""
    return any(CHECKPOINT.fullmatch(part) for part in relative.split("/"))


def record_outputs(output_dir: str | os.PathLike, command: str) -> None:
    """After training wrote its files: the marker lists them, so a later run knows them as its own."""
    write_marker(Path(output_dir), command)


@contextmanager
def held(folder: Path, command: str) -> Iterator[None]:
    """
    `folder` (made if need be) held by this run alone while it writes there: a second run of `command` on the same
    folder, from this machine or another sharing the file system, is refused at once instead of mixing its files in
    (where the file system locks folders: on one that does not, such as NFSv4, the run goes on unguarded).
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UnsafePathError(
                f"{folder} is being written by another run of `{command}`; wait for it to end, or choose another "
                "folder."
            ) from None
        except OSError:
            pass  # a file system without locks on folders (NFSv4, Lustre): the run goes on unguarded
        yield
    finally:
        os.close(handle)  # the lock goes with it


def remove(path: Path) -> None:
    """A file, a link (never what it points to) or a folder with everything in it."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
