"""What every conversion script shares: the build report, media encoding, saving, the dataset card, Hub upload, CLI."""

import argparse
import csv
import io
import json
import shutil
import sys
import tempfile
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
from PIL import Image

from gia_mic.hub import PublishError, require_hub_token
from modeling_gia_mic.processing_gia_mic import resample


SAMPLING_RATE = 16000
# Audio is generated as its Arrow struct and cast to `Audio` afterwards: `Audio.encode_example` imports torchcodec
# even for ready-made bytes, and torchcodec does not work beside the CPU torch build.
AUDIO_STRUCT = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}


class BuildError(ValueError):
    """The source corpus is not what the script expects; the message names the file, line or field."""


@dataclass
class BuildReport:
    """Everything a build left out, and why, so nothing is dropped silently."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    excluded: Counter = field(default_factory=Counter)
    kept_with_warning: list[tuple[str, str]] = field(default_factory=list)
    strict: bool = False

    def skip(self, item_id: str, reason: str) -> None:
        """Record an item that cannot be built (`--strict` makes it an error)."""
        if self.strict:
            raise BuildError(f"{item_id}: {reason} (run without --strict to skip and report such items)")
        self.skipped.append((item_id, reason))

    def exclude(self, category: str) -> None:
        """Count an item left out on purpose (e.g. an emotion outside the chosen label set)."""
        self.excluded[category] += 1

    def warn(self, item_id: str, reason: str) -> None:
        """Record an item that is kept but incomplete (e.g. a segment with no transcript)."""
        self.kept_with_warning.append((item_id, reason))

    def summary(self, dataset: DatasetDict, label_column: str | None) -> dict[str, Any]:
        splits = {}
        for name, split in dataset.items():
            entry: dict[str, Any] = {"rows": split.num_rows}
            if label_column and isinstance(split.features.get(label_column), ClassLabel):
                names = split.features[label_column].names
                counts = Counter(split[label_column])
                entry["labels"] = {names[i]: counts.get(i, 0) for i in range(len(names))}
            splits[name] = entry
        reasons = Counter(reason for _, reason in self.skipped)
        return {
            "splits": splits,
            "kept_with_warning": self.kept_with_warning,
            "excluded": dict(self.excluded),
            "skipped": {"count": len(self.skipped), "by_reason": dict(reasons), "items": self.skipped},
        }


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["Rows per split:"]
    for name, entry in summary["splits"].items():
        labels = ", ".join(f"{label} {count}" for label, count in entry.get("labels", {}).items())
        lines.append(f"  {name}: {entry['rows']}" + (f" ({labels})" if labels else ""))
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


def read_csv(path: Path, required: Sequence[str], missing_file_hint: str) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV with a header, checked for the columns a builder needs."""
    if not path.is_file():
        raise BuildError(f"{path} not found: {missing_file_hint}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise BuildError(f"{path}: missing column(s) {missing}; expected at least {', '.join(required)}.")
        return list(reader)


# ---------------------------------------------------------------------------------------------------------------------
# Media
# ---------------------------------------------------------------------------------------------------------------------


def wav_bytes(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, waveform, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def audio_file_16k(path: Path) -> dict[str, Any]:
    """An audio file as the `Audio` column's struct: its own bytes if already 16 kHz mono, else 16 kHz mono WAV."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise BuildError(f"Cannot read audio file {path}: {error}") from error
    if info.samplerate == SAMPLING_RATE and info.channels == 1:
        return {"bytes": path.read_bytes(), "path": path.name}
    waveform, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = resample(waveform.mean(axis=1), rate, SAMPLING_RATE)
    return {"bytes": wav_bytes(mono), "path": path.with_suffix(".wav").name}


def read_audio_track(path: Path, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """The first audio stream of a media file (e.g. an mp4 clip), decoded with PyAV to mono float32 at 16 kHz."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise BuildError(f"Cannot open media file {path}: {error}") from error
    with container:
        if not container.streams.audio:
            raise BuildError(f"{path} has no audio stream.")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sampling_rate)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    if not chunks:
        raise BuildError(f"{path}: the audio stream has no samples.")
    return np.concatenate(chunks).astype(np.float32)


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
    generator: Callable[..., Iterator[dict[str, Any]]],
    features: Features,
    cache_dir: Path,
    split: str,
    **generator_kwargs,
) -> Dataset:
    """Stream rows from `generator` into an on-disk Arrow split (memory stays bounded), then cast audio columns."""
    raw_features = Features(
        {name: AUDIO_STRUCT if isinstance(feature, Audio) else feature for name, feature in features.items()}
    )
    dataset = Dataset.from_generator(
        generator,
        features=raw_features,
        gen_kwargs=generator_kwargs,
        cache_dir=str(cache_dir),
        split=datasets.NamedSplit(split),
    )
    return dataset.cast(features)


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
) -> str:
    """A Hub dataset card: YAML (licence, features, splits, Parquet configs) and a body with counts and protocol."""
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
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", type=Path, required=True, help="the corpus folder, as released")
    parser.add_argument("--output", type=Path, required=True, help="where to write the dataset")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload to this Hub dataset repository")
    parser.add_argument("--public", action="store_true", help="make the Hub repository public (default: private)")
    parser.add_argument("--strict", action="store_true", help="fail on the first unusable item instead of skipping")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty output folder")
    return parser


def run(
    args: argparse.Namespace,
    build: Callable[[BuildReport, Path], DatasetDict],
    card: Callable[[DatasetDict, dict[str, Any]], str],
    label_column: str | None,
) -> DatasetDict:
    """Build into a temporary cache, save to `args.output`, print the summary, push if asked."""
    try:
        token = require_hub_token() if args.push_to_hub else None
    except PublishError as error:
        raise BuildError(str(error)) from None
    if args.output.exists() and any(args.output.iterdir()) and not args.overwrite:
        raise BuildError(f"Output folder {args.output} exists and is not empty; choose another or pass --overwrite.")
    report = BuildReport(strict=args.strict)
    with tempfile.TemporaryDirectory(prefix="gia-mic-build-") as cache:
        dataset = build(report, Path(cache))
        summary = report.summary(dataset, label_column)
        shutil.rmtree(args.output, ignore_errors=True)
        save(dataset, args.output, card(dataset, summary), summary)
    dataset = datasets.load_from_disk(str(args.output))
    print(format_summary(summary))
    print(f"Saved to {args.output} (save_to_disk, data/*.parquet, README.md, build_report.json)")
    if args.push_to_hub:
        print(f"Uploaded to {push_to_hub(args.output, args.push_to_hub, not args.public, token)}")
    return dataset


def main_guard(entry: Callable[[list[str] | None], Any]) -> None:
    """Run a script's `main`, turning a `BuildError` into a one-line message and exit status 2."""
    try:
        entry(None)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
