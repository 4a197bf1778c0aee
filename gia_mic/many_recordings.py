"""
`gia-mic analyze A.wav B.mp4 FOLDER @list.txt --output OUT`: many recordings, each one's timeline in
`OUT/<name>/timeline.{csv,json,png}` (a folder's recordings named by their path in it, without the extension; a file
given or listed by its name) and `OUT/index.csv`, one row per recording: path, duration, utterances, status (`done` or
`error: <one line>`), the process that analysed it and the seconds it took.

Each timeline folder is put in place whole (`write_folder`) and the index is rewritten whole after each recording,
so a kill at any moment loses at most the recording in flight; a rerun of the same command skips the recordings whose
folder is complete (`--overwrite` analyses them again). A bad file is an error row, not the end of the run.
"""

import csv
import io
import json
import os
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from accelerate.utils import broadcast_object_list
from tqdm.auto import tqdm

from modeling_gia_mic.recording_gia_mic import probe

from .analysis import COMMAND, AnalysisSettings, StageBars
from .errors import one_line
from .folders import UnsafePathError, check_writable, held, read_marker, remove, write_file, write_folder
from .processes import balanced, processes
from .timeline import write_timeline


INDEX = "index.csv"
INDEX_COLUMNS = ("path", "duration", "utterances", "status", "process", "seconds")
PROCESS_ROWS = re.compile(r"\.index-process\d+\.csv")  # each process's own rows while the run goes
MEDIA_SUFFIXES = frozenset(
    ".wav .flac .mp3 .m4a .aac .ogg .oga .opus .wma .aiff .aif .mp4 .m4v .mkv .webm .mov .avi .wmv .mpg .mpeg .3gp "
    ".mts".split()
)


@dataclass(frozen=True)
class Recording:
    path: Path  # the file, as the user named it
    name: str  # its folder under OUT


def expand(arguments: list[str]) -> list[Recording]:
    """
    Files, folders (recursively, media files only, in name order) and `@list.txt` files (one path per line, relative
    to the list's folder; blank lines and `#` comments skipped), in the order given; a path that does not exist, or
    two recordings that would share an output folder, is one error naming them.
    """
    found: list[Recording] = []
    for argument in arguments:
        if argument.startswith("@"):
            found += listed(Path(argument[1:]))
        elif Path(argument).is_dir():
            root = Path(argument)
            media = sorted(p for p in root.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
            found += [Recording(p, p.relative_to(root).with_suffix("").as_posix()) for p in media]
        elif Path(argument).exists():
            found.append(Recording(Path(argument), Path(argument).stem))
        else:
            raise FileNotFoundError(f"{argument}: no such file or folder.")
    recordings = list(dict.fromkeys(found))
    for recording in recordings:
        if any(part in ("", ".", "..") for part in recording.name.split("/")):
            raise ValueError(f"{recording.path}: its name gives no folder of its own under the output; rename it.")
    if not recordings:
        raise ValueError(f"No audio or video files in {' '.join(arguments)}.")
    check_folders_apart(recordings)
    return recordings


def check_folders_apart(recordings: list[Recording]) -> None:
    """
    Each recording's output folder apart from every other's: not the same name, not the same name but for case (one
    folder on macOS and Windows), and not one inside another (writing the outer one whole would remove the inner).
    """
    owners: dict[str, Recording] = {}
    for recording in recordings:
        if recording.name.casefold() in owners:
            raise folders_clash(owners[recording.name.casefold()], recording)
        owners[recording.name.casefold()] = recording
    for key, recording in owners.items():
        parts = key.split("/")
        outer = next((owners[p] for p in ("/".join(parts[:n]) for n in range(1, len(parts))) if p in owners), None)
        if outer is not None:
            raise folders_clash(outer, recording)


def folders_clash(one: Recording, other: Recording) -> ValueError:
    return ValueError(
        f"{one.path} and {other.path} would be written to {one.name}/ and {other.name}/, one folder or one inside the "
        "other; give them from one folder, or rename one."
    )


def listed(path: Path) -> list[Recording]:
    if not path.is_file():
        raise FileNotFoundError(f"@{path}: no such list file.")
    recordings = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        file = path.parent / entry
        if not file.is_file():
            raise FileNotFoundError(f"@{path} line {number}: {entry} is not a file.")
        recordings.append(Recording(file, file.stem))
    return recordings


def check_output(output: Path) -> None:
    """
    OUT may be new, empty, or an earlier run's: nothing in it but `index.csv` with this command's header and folders
    that `gia-mic analyze` wrote (with the folders that hold them). Anything else is the user's: OUT is refused.
    """
    if output.exists() and not output.is_dir():
        raise UnsafePathError(f"The output {output} exists and is not a folder; choose another path.")
    if output.is_dir():
        header = ",".join(INDEX_COLUMNS)
        index = output / INDEX
        if index.exists() and (not index.is_file() or index.read_text(encoding="utf-8").split("\n", 1)[0] != header):
            raise UnsafePathError(f"{index} was not written by {COMMAND}; the folder {output} is left untouched.")
        stray = next(foreign_entries(output, top=True), None)
        if stray is not None:
            raise UnsafePathError(
                f"The output folder {output} holds {stray.relative_to(output)}, which {COMMAND} did not write; it is "
                "left untouched: choose another folder."
            )
    check_writable(output)


def foreign_entries(folder: Path, top: bool = False):
    """Entries under `folder` that are neither the index, nor a timeline folder of ours, nor a folder holding those."""
    for entry in folder.iterdir():
        if top and (entry.name == INDEX or PROCESS_ROWS.fullmatch(entry.name)):
            continue
        if entry.is_symlink() or not entry.is_dir():
            if not entry.name.startswith(".") or ".partial-" not in entry.name:  # a staging file a kill left behind
                yield entry
        elif read_marker(entry).get("command") != COMMAND and ".partial-" not in entry.name:
            yield from foreign_entries(entry)


def remove_staging(output: Path) -> None:
    """What a killed run left half-written: `write_folder`'s and `write_file`'s staging entries (`.NAME.partial-*`)."""
    if output.is_dir():
        for staging in list(output.rglob(".*.partial-*")):
            if not staging.exists() and not staging.is_symlink():
                continue  # inside one removed already
            remove(staging)


def made_with(folder: Path, recording: Recording) -> dict | None:
    """
    The settings of a timeline folder put in place by this command (so whole) for this very recording (not another of
    its name); None where the folder is not one, `{}` where it does not say (made before timelines recorded them).
    """
    if read_marker(folder).get("command") != COMMAND or not (folder / "timeline.json").is_file():
        return None
    try:
        timeline = json.loads((folder / "timeline.json").read_text(encoding="utf-8"))
    except ValueError:
        return None
    if not isinstance(timeline, dict) or timeline.get("source") != source_of(recording):
        return None
    return timeline.get("settings") or {}


def source_of(recording: Recording) -> str:
    return text_of(os.path.abspath(recording.path))


def read_index(output: Path) -> dict[str, dict]:
    """The rows of an index (OUT's, or a process's file), by path."""
    index = output / INDEX if output.is_dir() else output
    if not index.is_file():
        return {}
    text = index.read_text(encoding="utf-8", errors="replace")
    return {row["path"]: row for row in csv.DictReader(io.StringIO(text))}


def write_index(output: Path, rows: list[dict]) -> None:
    write_rows(output / INDEX, rows)


def write_rows(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_file(path, text.getvalue())


def earlier_row(recording: Recording, folder: Path, earlier: dict[str, dict]) -> dict:
    """The row of a recording analysed by an earlier run: its index row, else what its timeline says."""
    if earlier.get(path_text(recording), {}).get("status") == "done":
        return earlier[path_text(recording)]
    timeline = json.loads((folder / "timeline.json").read_text(encoding="utf-8"))
    duration, utterances = timeline.get("duration"), len(timeline.get("segments", []))
    return row(recording, duration, utterances, "done", "", "")


def path_text(recording: Recording) -> str:
    """The path as the index names it."""
    return text_of(recording.path)


def text_of(path: str | os.PathLike) -> str:
    """A path as text that can be written (a name that is not UTF-8 with its odd bytes replaced)."""
    return os.fsdecode(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def row(recording: Recording, duration, utterances, status: str, process, seconds) -> dict:
    rounded = round(duration, 3) if isinstance(duration, float) else duration
    values = (path_text(recording), rounded, utterances, status, process, seconds)
    return dict(zip(INDEX_COLUMNS, values))


def analyze_many(
    recordings: list[Recording],
    settings: AnalysisSettings,
    output: Path,
    overwrite: bool = False,
    verbose: bool = False,
) -> list[dict] | None:
    """
    Analyse every recording into OUT (see the module's docstring). Under `accelerate launch` the recordings left to do
    are shared between the processes (longest first, `balanced`), each on its own device, each writing its rows to its
    own file; the main process writes the index and returns its rows (the others return None).
    """
    state = processes()
    if state.is_main_process:
        check_output(output)
    with held(output, COMMAND) if state.is_main_process else nullcontext():
        plan = [planned(recordings, output, overwrite, settings) if state.is_main_process else None]
        earlier, rows, pending = broadcast_object_list(plan)[0]
        mine = balanced(pending, lambda item: item[1].duration or 0.0, state.num_processes)[state.process_index]
        own: dict[Recording, dict] = {}
        if mine:
            classifier = settings.pipeline(device=state.device)
            progress = Progress(pending, output, recordings, earlier, state.is_main_process)
            for recording, info in mine:
                own[recording] = analyze_one(
                    classifier, recording, info, output, settings, state.process_index, verbose
                )
                write_rows(output / f".index-process{state.process_index}.csv", list(own.values()))
                progress.update({**rows, **own})
            progress.close()
        state.wait_for_everyone()
        if not state.is_main_process:
            return None
        return gather_rows(output, {**earlier, **{path_text(r): value for r, value in rows.items()}}, recordings)


def planned(
    recordings: list[Recording], output: Path, overwrite: bool, settings: AnalysisSettings
) -> tuple[dict, dict, list]:
    """
    (The main process, OUT held.) What a killed run left: its staging entries cleared, its processes' rows gathered
    into the index. Then the plan the processes share: the index's rows, the rows of the recordings done before or
    that cannot be read, and the recordings left to analyse with what `probe` found (read before the model loads).
    """
    remove_staging(output)
    gather_rows(output, read_index(output), recordings)
    earlier, rows, pending, changed = read_index(output), {}, [], 0
    wanted = settings.record()
    for recording in recordings:
        folder = output / recording.name
        made = None if overwrite else made_with(folder, recording)
        if made == {} or made == wanted:  # settings not recorded: taken as these
            rows[recording] = earlier_row(recording, folder, earlier)
            continue
        changed += made is not None
        try:
            pending.append((recording, probe(recording.path)))
        except ValueError as error:
            rows[recording] = row(recording, "", "", f"error: {one_line(error)}", "", "")
    skipped = sum(1 for r in rows.values() if r["status"] == "done")
    if skipped:
        print(
            f"{skipped} of {len(recordings)} recordings were analysed by an earlier run: skipped "
            "(--overwrite analyses them again)."
        )
    if changed:
        print(
            f"{changed} of {len(recordings)} recordings were analysed by an earlier run with other settings: "
            "analysed again."
        )
    write_index(output, in_order({**earlier, **{path_text(r): value for r, value in rows.items()}}, recordings))
    return earlier, rows, pending


def process_rows(output: Path) -> dict[str, dict]:
    """The rows each process has written to its own file so far."""
    found = {}
    for path in sorted(output.glob(".index-process*.csv")):
        found.update(read_index(path))
    return found


def gather_rows(output: Path, known: dict[str, dict], recordings: list[Recording]) -> list[dict]:
    """
    The index: each recording's row from the processes' files, else from `known` (see `in_order`); written whole,
    then the processes' files removed. Returns this run's rows.
    """
    found = {**known, **process_rows(output)}
    write_index(output, in_order(found, recordings))
    for path in output.glob(".index-process*.csv"):
        path.unlink()
    return [found[path_text(r)] for r in recordings if path_text(r) in found]


def in_order(found: dict[str, dict], recordings: list[Recording]) -> list[dict]:
    """The rows of this run's recordings in their order, then those of earlier runs' other recordings (kept)."""
    current = [path_text(r) for r in recordings]
    return [found[p] for p in current if p in found] + [row for p, row in found.items() if p not in set(current)]


class Progress:
    """One bar over every process's recordings, drawn by the main process: recordings, minutes of audio, rate."""

    def __init__(self, pending: list, output: Path, recordings: list[Recording], earlier: dict, main: bool):
        self.output, self.recordings, self.earlier, self.main = output, recordings, earlier, main
        self.durations = {path_text(r): info.duration or 0.0 for r, info in pending}
        self.total = sum(self.durations.values())
        self.started = time.perf_counter()
        self.bar = tqdm(total=len(pending), desc="Recordings", unit="recording", disable=not main)

    def update(self, rows: dict) -> None:
        """After a recording of this process: the bar, and (main) the index with every process's rows so far."""
        if not self.main:
            return
        found = {**self.earlier, **{path_text(r): value for r, value in rows.items()}, **process_rows(self.output)}
        write_index(self.output, in_order(found, self.recordings))
        finished = set(found) & set(self.durations)
        heard = sum(self.durations[path] for path in finished)
        rate = heard / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{heard / 60:.1f} of {self.total / 60:.1f} min of audio, {rate:.1f}x real time")
        self.bar.update(len(finished) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def analyze_one(
    classifier, recording: Recording, info, output: Path, settings: AnalysisSettings, process: int, verbose: bool
) -> dict:
    """One recording's row; its timeline folder written whole, or an error row naming the problem."""
    started = time.perf_counter()
    bars = StageBars(settings.stages(classifier, info)) if verbose else None
    try:
        analysis = settings.run(classifier, info, bars)
        timeline = {
            "source": source_of(recording),
            "settings": settings.record(),
            **analysis.timeline(list(analysis.segments)),
        }
        write_folder(
            output / recording.name,
            lambda folder: write_timeline(timeline, classifier.labels, folder, recording.path.name),
            command=COMMAND,
            overwrite=True,  # a folder of ours that is not complete, or --overwrite
        )
    except Exception as error:  # one bad recording is its row's error, not the end of the run
        if os.environ.get("GIA_MIC_DEBUG"):
            raise
        seconds = round(time.perf_counter() - started, 2)
        return row(recording, info.duration, "", f"error: {one_line(error)}", process, seconds)
    finally:
        if bars is not None:
            bars.close()
    seconds = round(time.perf_counter() - started, 2)
    return row(recording, info.duration, len(timeline["segments"]), "done", process, seconds)


def summary(output: Path, rows: list[dict]) -> str:
    done = sum(r["status"] == "done" for r in rows)
    errors = [r for r in rows if r["status"] != "done"]
    lines = [f"{done} of {len(rows)} recordings analysed, {len(errors)} with an error; the index: {output / INDEX}"]
    lines += [f"  {r['path']}: {r['status']}" for r in errors]
    return "\n".join(lines)
