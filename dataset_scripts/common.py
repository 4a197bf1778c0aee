"""What every conversion script shares: the build report, media encoding, saving, the dataset card, Hub upload, CLI."""

import argparse
import codecs
import csv
import io
import json
import math
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import soundfile as sf
import yaml
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features
from datasets.exceptions import DatasetGenerationError
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from gia_mic.errors import ArgumentParser, run_reporting_errors
from gia_mic.folders import UnsafePathError, claim_output, path_inside, write_folder
from gia_mic.hub import PublishError, require_hub_token
from modeling_gia_mic.audio_gia_mic import NoAudioTrackError, decode_clip
from modeling_gia_mic.processing_gia_mic import check_image_size, read_video_frames, resample


SAMPLING_RATE = 16000
COMMAND = "gia-mic dataset build"  # every builder: one may replace another's earlier output
# Audio is generated as its Arrow struct and cast to `Audio` afterwards: `Audio.encode_example` imports torchcodec
# even for ready-made bytes, and torchcodec does not work beside the CPU torch build.
AUDIO_STRUCT = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}


# Rows held before each write to the Arrow file: rows of media or feature sequences are large (a MOSEI row is ~0.2 MB),
# and the writer's default of 1,000 rows would hold hundreds of MB.
WRITER_BATCH_ROWS = 100


class BuildError(ValueError):
    """The source corpus is not what the script expects; the message names the file, line or field."""


class ItemError(Exception):
    """An item (utterance, clip, image) that cannot be built: skipped and reported by id (`--strict`: an error)."""


@dataclass
class BuildReport:
    """Everything a build left out, and why, so nothing is dropped silently."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    excluded: Counter = field(default_factory=Counter)
    kept_with_warning: list[tuple[str, str]] = field(default_factory=list)
    strict: bool = False
    seen_ids: set[tuple[str, str]] = field(default_factory=set)

    def skip(self, item_id: str, reason: str) -> None:
        """Record an item that cannot be built (`--strict` makes it an error)."""
        if self.strict:
            raise BuildError(f"{item_id}: {reason} (run without --strict to skip and report such items)")
        self.skipped.append((item_id, reason))

    def first_time(self, split: str, item_id: str) -> bool:
        """Whether `item_id` is new to its split; a repeated id is skipped and reported."""
        if (split, item_id) in self.seen_ids:
            self.skip(item_id, f"duplicate id (an earlier item of {split} has the same id)")
            return False
        self.seen_ids.add((split, item_id))
        return True

    def exclude(self, category: str) -> None:
        """Count an item left out on purpose (e.g. an emotion outside the chosen label set)."""
        self.excluded[category] += 1

    def warn(self, item_id: str, reason: str) -> None:
        """Record an item that is kept but incomplete (e.g. a segment with no transcript)."""
        self.kept_with_warning.append((item_id, reason))

    def summary(
        self, dataset: DatasetDict, label_column: str | None, standard_splits: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Rows (and labels) per split, what was left out and why, and the split sizes against the standard ones."""
        splits = {}
        for name, split in dataset.items():
            entry: dict[str, Any] = {"rows": split.num_rows}
            if label_column and isinstance(split.features.get(label_column), ClassLabel):
                names = split.features[label_column].names
                counts = Counter(split[label_column])
                entry["labels"] = {names[i]: counts.get(i, 0) for i in range(len(names))}
            splits[name] = entry
        reasons = Counter(reason for _, reason in self.skipped)
        standard = {}
        if standard_splits:
            found = {name: splits.get(name, {"rows": 0})["rows"] for name in standard_splits}
            standard = {"expected": standard_splits, "found": found, "agrees": found == standard_splits}
        return {
            "splits": splits,
            "standard_splits": standard,
            "kept_with_warning": self.kept_with_warning,
            "excluded": dict(self.excluded),
            "skipped": {"count": len(self.skipped), "by_reason": dict(reasons), "items": self.skipped},
        }


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["Rows per split:"]
    for name, entry in summary["splits"].items():
        labels = ", ".join(f"{label} {count}" for label, count in entry.get("labels", {}).items())
        lines.append(f"  {name}: {entry['rows']}" + (f" ({labels})" if labels else ""))
    standard = summary.get("standard_splits")
    if standard:
        sizes = " / ".join(str(n) for n in standard["expected"].values())
        if standard["agrees"]:
            lines.append(f"Standard split ({sizes}): matches.")
        else:
            differences = ", ".join(
                f"{name} {standard['found'][name]} (standard {count})"
                for name, count in standard["expected"].items()
                if standard["found"][name] != count
            )
            lines.append(f"Standard split ({sizes}): DIFFERS: {differences}.")
    for item, reason in summary["kept_with_warning"]:
        lines.append(f"Kept, but {reason}: {item}")
    if summary["excluded"]:
        lines.append("Excluded on purpose: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["excluded"].items())))
    skipped = summary["skipped"]
    lines.append(f"Skipped: {skipped['count']}")
    for reason, count in skipped["by_reason"].items():
        examples = [item for item, why in skipped["items"] if why == reason][:5]
        lines.append(f"  {count} x {reason}: {', '.join(examples)}{' ...' if count > 5 else ''}")
    return "\n".join(lines)


def read_text(path: Path, report: "BuildReport | None" = None) -> str:
    """
    A UTF-8 text file. A byte-order mark is removed (and noted in the report); a byte that is not UTF-8 is an error
    naming the file, line and column, never a silently replaced character.
    """
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        if report is not None:
            report.warn(str(path), "starts with a UTF-8 byte-order mark (removed)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise BuildError(
            f"{path}:{line}: byte 0x{data[error.start]:02x} at column {column} is not UTF-8; save the file as UTF-8."
        ) from None


def read_csv(
    path: Path, required: Sequence[str], missing_file_hint: str, report: "BuildReport | None" = None
) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV with a header, checked for the columns a builder needs."""
    if not path.is_file():
        raise BuildError(f"{path} not found: {missing_file_hint}")
    reader = csv.DictReader(io.StringIO(read_text(path, report), newline=""))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise BuildError(f"{path}: missing column(s) {missing}; expected at least {', '.join(required)}.")
    return list(reader)


def media_path(root: Path, relative: str | Path, item_id: str) -> Path:
    """A media file's path built from an item's ids, refused (`ItemError`) if it leads outside `root`."""
    try:
        return path_inside(root, relative, f"item {item_id}")
    except UnsafePathError as error:
        raise ItemError(f"path leaves --root ({error})") from None


# ---------------------------------------------------------------------------------------------------------------------
# Media
# ---------------------------------------------------------------------------------------------------------------------


def wav_bytes(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> bytes:
    """A float32 WAV: the samples as resampled (no 16-bit rounding), so training reads what serving computes."""
    buffer = io.BytesIO()
    sf.write(buffer, waveform, sampling_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def wav_truncation(data: bytes) -> str | None:
    """Why a RIFF/WAVE file is cut short (its data chunk announces more bytes than follow), or None."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk == b"data":
            available = len(data) - offset - 8
            if size > available and size != 0xFFFFFFFF:  # 0xFFFFFFFF: a streamed WAV of unknown length
                return f"truncated WAV (the header announces {size} bytes of samples, the file holds {available})"
            return None
        offset += 8 + size + (size & 1)
    return "WAV without a data chunk"


def audio_file_16k(path: Path) -> dict[str, Any]:
    """
    An audio file as the `Audio` column's struct: its own bytes if already 16 kHz, else 16 kHz mono WAV, made by the
    model's one audio reader (`decode_clip` and `resample`, as `read_audio`). The whole file is decoded and checked
    first: unreadable, empty, truncated or non-finite audio is an `ItemError`.
    """
    data = path.read_bytes()
    problem = wav_truncation(data)
    if problem:
        raise ItemError(problem)
    waveform, rate = media_audio(data, "unreadable audio")
    if rate == SAMPLING_RATE:
        return {"bytes": data, "path": path.name}
    return {"bytes": wav_bytes(resample(waveform, rate, SAMPLING_RATE)), "path": path.with_suffix(".wav").name}


def read_audio_track(path: Path) -> np.ndarray:
    """The first audio stream of a media file (e.g. an mp4 clip) as mono float32 at 16 kHz, as `read_audio` does."""
    waveform, rate = media_audio(path, "undecodable media file")
    return resample(waveform, rate, SAMPLING_RATE)


def media_audio(source: Path | bytes, unreadable: str) -> tuple[np.ndarray, int]:
    """A file's audio at its own rate, mono, checked; what cannot be used is an `ItemError` (`unreadable`: the reason
    for a file that cannot be decoded)."""
    try:
        waveform, rate = decode_clip(source, max_seconds=math.inf)
    except NoAudioTrackError:
        raise ItemError("media file without an audio stream") from None
    except ValueError:
        raise ItemError(unreadable) from None
    if waveform.size == 0:
        raise ItemError("audio without samples")
    if not np.isfinite(waveform).all():
        raise ItemError("audio with NaN or infinite samples")
    return waveform, rate


def video_frames(path: Path, num_frames: int, start: float | None = None, end: float | None = None) -> list:
    """`num_frames` RGB frames of a video span; a missing, corrupt or too short video is an `ItemError`."""
    try:
        return read_video_frames(path, num_frames, start=start, end=end)
    except ValueError as error:
        raise ItemError(str(error).replace(str(path), path.name)) from None


def image_file(path: Path) -> dict[str, Any]:
    """An image file as the `Image` feature's struct, decoded completely first (a truncated JPEG is an `ItemError`)."""
    data = path.read_bytes()
    try:
        with warnings.catch_warnings():  # PIL's warning for large images: the size is checked here, from the header
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            check_image_size(*image.size, "image")
            image.load()
            size = image.size
    except (ValueError, Image.DecompressionBombError) as error:
        raise ItemError(
            str(error) if isinstance(error, ValueError) else "image over PIL's decompression limit"
        ) from None
    except UnidentifiedImageError:
        raise ItemError("unreadable image (not a known image format)") from None
    except (OSError, SyntaxError) as error:
        raise ItemError(f"unreadable image ({error})") from None
    if 0 in size:
        raise ItemError(f"image of size {size[0]}x{size[1]}")
    return {"bytes": data, "path": path.name}


def jpeg_frames(frames: Iterable[np.ndarray], quality: int = 90) -> list[dict[str, Any]]:
    """RGB frames as the `Image` feature's struct (JPEG bytes)."""
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    return encoded


def decode_audio(value: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Decode an `Audio(decode=False)` cell with soundfile (torchcodec does not work beside the CPU torch)."""
    waveform, rate = sf.read(io.BytesIO(value["bytes"]), dtype="float32")
    return waveform, rate


# ---------------------------------------------------------------------------------------------------------------------
# Building, saving, publishing
# ---------------------------------------------------------------------------------------------------------------------


def generate_split(
    make_row: Callable[[Any], dict[str, Any]],
    items: Iterable[Any],
    item_id: Callable[[Any], str],
    features: Features,
    cache_dir: Path,
    split: str,
    report: BuildReport,
) -> Dataset:
    """
    Stream `make_row(item)` for every item into an on-disk Arrow split (memory stays bounded), then cast audio
    columns. An item whose row raises `ItemError`, or whose id was seen before, is skipped and reported by id.
    """
    raw_features = Features(
        {name: AUDIO_STRUCT if isinstance(feature, Audio) else feature for name, feature in features.items()}
    )
    built: list[int] = []
    try:
        dataset = Dataset.from_generator(
            _checked_rows,
            features=raw_features,
            gen_kwargs={
                "make_row": make_row,
                "items": tqdm(items, desc=f"Building {split}", unit=" items", leave=False),
                "item_id": item_id,
                "report": report,
                "split": split,
                "built": built,
            },
            cache_dir=str(cache_dir),
            split=datasets.NamedSplit(split),
            fingerprint=f"gia-mic-build-{split}-{uuid.uuid4().hex}",  # no hashing of the items
            writer_batch_size=WRITER_BATCH_ROWS,
        )
    except DatasetGenerationError as error:  # an item's own problem, raised inside the Arrow writer
        if isinstance(error.__cause__, BuildError | UnsafePathError):
            raise error.__cause__ from None
        if isinstance(error.__cause__, ValueError | OSError):
            raise BuildError(f"Building split {split!r}: {error.__cause__}") from None
        raise
    except ValueError:
        if built:
            raise
        return Dataset.from_dict({name: [] for name in features}, features=features)  # every item was skipped
    return dataset.cast(features)


def _checked_rows(
    make_row, items, item_id, report: BuildReport, split: str, built: list[int]
) -> Iterator[dict[str, Any]]:
    for item in items:
        try:
            row = make_row(item)
        except ItemError as error:
            report.skip(item_id(item), str(error))
            continue
        if report.first_time(split, row["id"]):
            built.append(1)
            yield row


def save(dataset: DatasetDict, output: Path, card: str, summary: dict[str, Any]) -> None:
    """`save_to_disk` + one Parquet file per split (media bytes embedded) + dataset card + build report."""
    output.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(output))
    for name, split in dataset.items():
        split.to_parquet(str(output / "data" / f"{name}-00000-of-00001.parquet"))
    (output / "README.md").write_text(card, encoding="utf-8")
    (output / "build_report.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")


def dataset_card(
    dataset: DatasetDict,
    *,
    pretty_name: str,
    license: str,
    citation: str,
    description: str,
    protocol: str,
    summary: dict[str, Any],
    task_categories: list[str],
    metrics: str | None = None,
) -> str:
    """
    A Hub dataset card: YAML (licence, features, splits, Parquet configs; `gia_mic.metrics`, the metric family
    `gia-mic train` reports, when not the default) and a body with counts and protocol.
    """
    first = next(iter(dataset.values()))
    metadata = {
        "license": license,
        "pretty_name": pretty_name,
        "task_categories": task_categories,
        "tags": ["emotion-recognition", "multimodal", "gia-mic"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"data/{name}-*.parquet"} for name in dataset],
            }
        ],
        "dataset_info": {
            **first.info._to_yaml_dict(),
            "splits": [{"name": name, "num_examples": split.num_rows} for name, split in dataset.items()],
        },
        **({"gia_mic": {"metrics": metrics}} if metrics else {}),
    }
    counts = format_summary(summary)
    return (
        f"---\n{yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)}---\n\n"
        f"# {pretty_name}\n\n{description}\n\n"
        f"Built with the GIA-MIC conversion scripts (`python -m dataset_scripts...`) from the user's own copy of the "
        f"official release; the data itself is not redistributed by this project.\n\n"
        f"## Protocol\n\n{protocol}\n\n## Contents\n\n```\n{counts}\n```\n\n"
        f"## Citation\n\n```bibtex\n{citation.strip()}\n```\n"
    )


def push_to_hub(output: Path, repo_id: str, private: bool, token: str) -> str:
    """Upload the Parquet files and the card of a saved build as a dataset repository (private by default)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(output),
        allow_patterns=["data/*.parquet", "README.md"],
        commit_message="Upload dataset built with the GIA-MIC conversion scripts",
    )
    return str(url)


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = ArgumentParser(description=description)
    parser.add_argument("--root", type=Path, required=True, help="the corpus folder, as released")
    parser.add_argument("--output", type=Path, required=True, help="where to write the dataset")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload to this Hub dataset repository")
    parser.add_argument("--public", action="store_true", help="make the Hub repository public (default: private)")
    parser.add_argument("--strict", action="store_true", help="fail on the first unusable item instead of skipping")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the output folder of an earlier build (atomically, at the end)",
    )
    return parser


def build_and_save(
    output: Path,
    build: Callable[[BuildReport, Path], DatasetDict],
    card: Callable[[DatasetDict, dict[str, Any]], str],
    label_column: str | None,
    inputs: dict[str, Path],
    overwrite: bool = False,
    strict: bool = False,
    standard_splits: dict[str, int] | None = None,
) -> tuple[DatasetDict, dict[str, Any]]:
    """
    The builders' Python API: build into a temporary cache and a staging folder beside `output`, then swap it in
    atomically (`save`: the dataset, Parquet, card and `build_report.json`). `output` may not be, hold or lie inside
    any of the `inputs` (flag -> path); an earlier build of ours is replaced only with `overwrite`. Returns the saved
    dataset and its report's summary (what was built and what was skipped, with the reasons).
    """
    claim_output(output, COMMAND, inputs, overwrite)
    report = BuildReport(strict=strict)
    with tempfile.TemporaryDirectory(prefix="gia-mic-build-") as cache:
        built = build(report, Path(cache))
        dataset = DatasetDict({name: split for name, split in built.items() if split.num_rows})
        summary = report.summary(built, label_column, standard_splits)
        if not dataset:
            raise BuildError("Every item was skipped; nothing to save.\n" + format_summary(summary))
        text = card(dataset, summary)
        write_folder(
            output, lambda staging: save(dataset, staging, text, summary), command=COMMAND, overwrite=overwrite
        )
    return datasets.load_from_disk(str(output)), summary


def run(
    args: argparse.Namespace,
    build: Callable[[BuildReport, Path], DatasetDict],
    card: Callable[[DatasetDict, dict[str, Any]], str],
    label_column: str | None,
    standard_splits: dict[str, int] | None = None,
) -> DatasetDict:
    """A conversion script's command line: `build_and_save` with its arguments, the summary printed, the push."""
    try:
        token = require_hub_token() if args.push_to_hub else None
    except PublishError as error:
        raise BuildError(str(error)) from None
    inputs = {f"--{name.replace('_', '-')}": value for name, value in vars(args).items() if isinstance(value, Path)}
    inputs.pop("--output")
    dataset, summary = build_and_save(
        args.output, build, card, label_column, inputs, args.overwrite, args.strict, standard_splits
    )
    print(format_summary(summary))
    print(f"Saved to {args.output} (save_to_disk, data/*.parquet, README.md, build_report.json)")
    if args.push_to_hub:
        print(f"Uploaded to {push_to_hub(args.output, args.push_to_hub, not args.public, token)}")
    return dataset


def main_guard(entry: Callable[[list[str] | None], Any]) -> None:
    """Run a script's `main`: a `BuildError`, an unsafe output or an unreadable file is one line and exit status 2."""
    run_reporting_errors(lambda: entry(None))
