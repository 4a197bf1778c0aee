"""
CMU-MOSI -> Hugging Face dataset, from any of the three forms a user may hold (the videos are YouTube clips that may
not be redistributed):

    # (a) MMSA raw release: label.csv + Raw/<video_id>/<clip_id>.mp4 (audio at 16 kHz, optional frames)
    python -m dataset_scripts.mosi --source raw --root MOSI --output data/mosi [--with-video] [--text-only]
    # (b) MMSA processed features (a pickle: it can run code, so it is read only with --allow-pickle)
    python -m dataset_scripts.mosi --source mmsa-pickle --root MOSI --allow-pickle --output data/mosi-features
    # (c) CMU Multimodal SDK computational sequences (.csd, HDF5)
    python -m dataset_scripts.mosi --source csd --root cmumosi --folds standard_folds.json --output data/mosi-csd

Standard split 1284 / 229 / 686 segments (the SDK's standard folds: 52 / 10 / 31 videos); sentiment in [-3, 3].
"""

import csv
import io
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Audio, ClassLabel, DatasetDict, Features, Image, List, Value
from tqdm.auto import tqdm

from .common import (
    BuildError,
    BuildReport,
    ItemError,
    argument_parser,
    dataset_card,
    generate_split,
    jpeg_frames,
    main_guard,
    media_path,
    positive_int,
    read_audio_track,
    read_csv,
    read_text,
    run,
    video_frames,
    wav_bytes,
)


SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "valid": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
}
SENTIMENT_CLASSES = ["negative", "neutral", "positive"]
RAW_COLUMNS = ("video_id", "clip_id", "text", "label")
FEATURE_COLUMNS = ("text_features", "audio_features", "vision_features")


def sentiment_class(label: float) -> int:
    return 0 if label < 0 else 1 if label == 0 else 2


def load_folds(path: Path | None) -> dict[str, str] | None:
    """video_id -> split name, from the SDK's standard folds JSON (`{"train": [...], "valid": [...], ...}`)."""
    if path is None:
        return None
    try:
        folds = json.loads(read_text(Path(path)))
    except json.JSONDecodeError as error:
        raise BuildError(f"{path}:{error.lineno}: not valid JSON ({error.msg}).") from None
    if not isinstance(folds, dict):
        raise BuildError(f"{path}: expected a JSON object of fold name -> video ids.")
    mapping = {}
    for key, videos in folds.items():
        if key not in SPLIT_ALIASES:
            raise BuildError(f"{path}: unknown fold {key!r}; expected train, valid and test.")
        mapping.update({video: SPLIT_ALIASES[key] for video in videos})
    return mapping


def split_of(video_id: str, mode: str | None, folds: dict[str, str] | None, where: str) -> str:
    """The segment's split from the folds (if given) or its `mode` column; a disagreement between them is an error."""
    from_mode = SPLIT_ALIASES.get(mode.strip().lower()) if mode else None
    if mode and from_mode is None:
        raise BuildError(f"{where}: unknown mode {mode!r}; expected train, valid/dev or test.")
    if folds is None:
        if from_mode is None:
            raise BuildError(f"{where}: no `mode` column and no --folds file to assign video {video_id} to a split.")
        return from_mode
    if video_id not in folds:
        raise BuildError(f"{where}: video {video_id} is in none of the folds of --folds.")
    if from_mode is not None and from_mode != folds[video_id]:
        raise BuildError(
            f"{where}: mode {mode!r} disagrees with the folds, which put {video_id} in {folds[video_id]}."
        )
    return folds[video_id]


def base_features() -> dict[str, Any]:
    return {
        "id": Value("string"),
        "video_id": Value("string"),
        "clip_id": Value("string"),
        "text": Value("string"),
        "label": Value("float32"),
        "label_class": ClassLabel(names=SENTIMENT_CLASSES),
        "start": Value("float32"),
        "end": Value("float32"),
    }


def base_row(video_id: str, clip_id: str, text: str, label: float, start=None, end=None) -> dict[str, Any]:
    return {
        "id": f"{video_id}_{clip_id}",
        "video_id": video_id,
        "clip_id": clip_id,
        "text": text,
        "label": label,
        "label_class": sentiment_class(label),
        "start": start,
        "end": end,
    }


def build_splits(
    rows_by_split: dict[str, list[Any]], make_row, features: Features, cache_dir: Path, report: BuildReport
) -> DatasetDict:
    return DatasetDict(
        {
            split: generate_split(
                make_row, rows_by_split[split], lambda item: item["id"], features, cache_dir, split, report
            )
            for split in SPLITS
            if rows_by_split.get(split)
        }
    )


# ---------------------------------------------------------------------------------------------------------------------
# (a) MMSA raw release: label.csv + Raw/<video_id>/<clip_id>.mp4
# ---------------------------------------------------------------------------------------------------------------------


def read_opinion_labels(path: Path | None) -> dict[tuple[str, str], tuple[float, float]]:
    """(video_id, segment_id) -> (start, end) from the raw `OpinionLevelSentiment.csv` (no header)."""
    if path is None:
        return {}
    spans = {}
    for number, row in enumerate(csv.reader(io.StringIO(read_text(Path(path)), newline="")), start=1):
        if len(row) != 5:
            raise BuildError(f"{path}:{number}: expected start,end,video_id,segment_id,sentiment; got {row}")
        spans[(row[2], row[3])] = (_float(row[0], f"{path}:{number}"), _float(row[1], f"{path}:{number}"))
    return spans


def raw_items(args, report: BuildReport) -> dict[str, list[dict[str, Any]]]:
    root = Path(args.root)
    label_file = root / args.label_file
    folds = load_folds(args.folds)
    spans = read_opinion_labels(args.opinion_labels)
    by_split: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    rows = read_csv(
        label_file, RAW_COLUMNS, "the MMSA raw release has label.csv at its root (or pass --label-file).", report
    )
    for number, row in enumerate(rows, start=2):
        where = f"{label_file}:{number}"
        label = _float(row["label"], f"{where}: label")
        if label is None or not -3.0 <= label <= 3.0:
            raise BuildError(f"{where}: label {row['label']!r} is not a sentiment score in [-3, 3].")
        video_id, clip_id = row["video_id"], row["clip_id"]
        start, end = spans.get((video_id, clip_id), (row.get("start"), row.get("end")))
        item = base_row(video_id, clip_id, row["text"] or "", label, _float(start, where), _float(end, where))
        if item["start"] is not None and item["end"] is not None and item["start"] > item["end"]:
            report.skip(item["id"], f"start {item['start']} s is after end {item['end']} s ({where})")
            continue
        if not item["text"].strip():
            report.warn(item["id"], "no transcript (text is empty)")
        if not args.text_only:
            item["media"] = Path("Raw") / video_id / f"{clip_id}.mp4"
        by_split[split_of(video_id, row.get("mode"), folds, where)].append(item)
    return by_split


def _float(value, where: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise BuildError(f"{where}: {value!r} is not a number.") from None
    if not np.isfinite(number):
        raise BuildError(f"{where}: {value!r} is not a finite number.")
    return number


def raw_row(item: dict[str, Any], root: Path, num_frames: int | None) -> dict[str, Any]:
    """One segment's row; its clip is found inside --root and decoded here (a bad clip is an `ItemError`)."""
    row = {key: value for key, value in item.items() if key != "media"}
    if "media" in item:
        media = media_path(root, item["media"], item["id"])
        if not media.is_file():
            raise ItemError(f"missing video ({item['media']})")
        row["audio"] = {"bytes": wav_bytes(read_audio_track(media)), "path": f"{item['id']}.wav"}
        if num_frames:
            row["frames"] = jpeg_frames(video_frames(media, num_frames))
    return row


def build_raw(args, report: BuildReport, cache_dir: Path) -> DatasetDict:
    columns = base_features()
    if not args.text_only:
        columns["audio"] = Audio(sampling_rate=16000, decode=False)
        if args.with_video:
            columns["frames"] = List(Image())
    items = raw_items(args, report)
    num_frames = args.num_frames if args.with_video and not args.text_only else None
    root = Path(args.root)
    return build_splits(items, lambda item: raw_row(item, root, num_frames), Features(columns), cache_dir, report)


# ---------------------------------------------------------------------------------------------------------------------
# (b) MMSA processed pickle: Processed/unaligned_50.pkl or aligned_50.pkl
# ---------------------------------------------------------------------------------------------------------------------


def feature_columns() -> dict[str, Any]:
    return {name: List(List(Value("float32"))) for name in FEATURE_COLUMNS}


def load_pickle(path: Path, allowed: bool) -> dict[str, Any]:
    if not allowed:
        raise BuildError(
            f"{path} is a pickle, and unpickling runs any code it contains. Read it only if you trust its source, "
            "by passing --allow-pickle."
        )
    if not path.is_file():
        raise BuildError(f"{path} not found: the MMSA release has Processed/unaligned_50.pkl and aligned_50.pkl.")
    warnings.warn(f"Unpickling {path}: this runs code from the file; only do it for files you trust.", stacklevel=2)
    with path.open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 - explicit opt-in above


def pickle_items(split_data: dict[str, Any], split: str, path: Path) -> list[dict[str, Any]]:
    required = ("raw_text", "id", "text", "audio", "vision", "regression_labels")
    missing = [key for key in required if key not in split_data]
    if missing:
        raise BuildError(f"{path}: split {split!r} lacks {missing}; expected the MMSA layout ({', '.join(required)}).")
    count = len(split_data["id"])
    text_lengths = (
        np.asarray(split_data["text_bert"])[:, 1].sum(-1).astype(int)
        if "text_bert" in split_data
        else np.full(count, np.asarray(split_data["text"]).shape[1])
    )
    audio_lengths = split_data.get("audio_lengths", [np.asarray(split_data["audio"]).shape[1]] * count)
    vision_lengths = split_data.get("vision_lengths", [np.asarray(split_data["vision"]).shape[1]] * count)
    items = []
    for i in range(count):
        video_id, _, clip_id = str(split_data["id"][i]).partition("$_$")
        if not clip_id:
            raise BuildError(f"{path}: id {split_data['id'][i]!r} in split {split!r} is not '<video_id>$_$<clip_id>'.")
        item = base_row(video_id, clip_id, str(split_data["raw_text"][i]), float(split_data["regression_labels"][i]))
        for name, key, length in (
            ("text_features", "text", text_lengths[i]),
            ("audio_features", "audio", audio_lengths[i]),
            ("vision_features", "vision", vision_lengths[i]),
        ):
            values = np.asarray(split_data[key][i], dtype=np.float32)[: max(int(length), 1)]
            item[name] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)  # MMSA audio holds -inf
        items.append(item)
    return items


def build_pickle(args, report: BuildReport, cache_dir: Path) -> DatasetDict:
    path = Path(args.pickle) if args.pickle else Path(args.root) / "Processed" / "unaligned_50.pkl"
    data = load_pickle(path, args.allow_pickle)
    by_split = {}
    for key, split_data in data.items():
        if key not in SPLIT_ALIASES:
            raise BuildError(f"{path}: unknown split {key!r}; expected train, valid and test.")
        by_split[SPLIT_ALIASES[key]] = pickle_items(split_data, key, path)
    return build_splits(by_split, dict, Features({**base_features(), **feature_columns()}), cache_dir, report)


# ---------------------------------------------------------------------------------------------------------------------
# (c) CMU Multimodal SDK computational sequences (.csd, HDF5)
# ---------------------------------------------------------------------------------------------------------------------


def read_csd(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """video_id -> (features (T, d), intervals (T, 2)) of one computational sequence."""
    import h5py

    if not path.is_file():
        raise BuildError(f"Computational sequence {path} not found.")
    with h5py.File(path, "r") as handle:
        roots = [group for group in handle.values() if "data" in group]
        if len(roots) != 1:
            raise BuildError(f"{path}: expected one computational sequence with a 'data' group, found {len(roots)}.")
        sequences = {}
        for video_id, group in roots[0]["data"].items():
            if "features" not in group or "intervals" not in group:
                raise BuildError(f"{path}: data/{video_id} lacks 'features' or 'intervals'.")
            sequences[video_id] = (group["features"][()], group["intervals"][()].astype(np.float64))
    return sequences


def overlapping(sequence: tuple[np.ndarray, np.ndarray], start: float, end: float) -> np.ndarray:
    """The rows of a computational sequence whose intervals overlap [start, end] (the SDK's alignment to labels)."""
    features, intervals = sequence
    return features[(intervals[:, 1] > start) & (intervals[:, 0] < end)]


def csd_items(args, report: BuildReport) -> dict[str, list[dict[str, Any]]]:
    root = Path(args.root)
    folds = load_folds(args.folds)
    if folds is None:
        raise BuildError("--source csd needs --folds (the SDK's standard folds JSON) to form the splits.")
    labels = read_csd(root / args.labels_csd)
    words = read_csd(root / args.words_csd) if args.words_csd else None
    streams = {
        name: read_csd(root / file)
        for name, file in (
            ("text_features", args.text_csd),
            ("audio_features", args.audio_csd),
            ("vision_features", args.vision_csd),
        )
        if file
    }
    by_split: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    for video_id in tqdm(sorted(labels), desc="Aligning segments", unit=" videos"):
        values, intervals = labels[video_id]
        order = np.argsort(intervals[:, 0])
        for clip_index, row in enumerate(order, start=1):  # segments are numbered in time order
            start, end = intervals[row]
            text = ""
            if words is not None and video_id in words:
                tokens = [
                    w[0].decode() if isinstance(w[0], bytes) else str(w[0])
                    for w in overlapping(words[video_id], start, end)
                ]
                text = " ".join(t for t in tokens if t != "sp")
            item = base_row(video_id, str(clip_index), text, float(values[row][0]), float(start), float(end))
            for name, sequence in streams.items():
                if video_id not in sequence:
                    report.skip(item["id"], f"no {name.split('_')[0]} features for video {video_id}")
                    break
                aligned = overlapping(sequence[video_id], start, end).astype(np.float32)
                if len(aligned) == 0:
                    report.skip(item["id"], f"no {name.split('_')[0]} frames inside [{start:.2f}, {end:.2f}] s")
                    break
                item[name] = np.nan_to_num(aligned, nan=0.0, posinf=0.0, neginf=0.0)
            else:
                by_split[split_of(video_id, None, folds, f"{args.labels_csd}: data/{video_id}")].append(item)
    return by_split


def build_csd(args, report: BuildReport, cache_dir: Path) -> DatasetDict:
    columns = {
        **base_features(),
        **{
            name: List(List(Value("float32")))
            for name in FEATURE_COLUMNS
            if getattr(args, f"{name.split('_')[0]}_csd")
        },
    }
    return build_splits(csd_items(args, report), dict, Features(columns), cache_dir, report)


# ---------------------------------------------------------------------------------------------------------------------
# Card and command line
# ---------------------------------------------------------------------------------------------------------------------

CITATION = """
@article{zadeh2016mosi,
  title   = {Multimodal Sentiment Intensity Analysis in Videos: Facial Gestures and Verbal Messages},
  author  = {Zadeh, Amir and Zellers, Rowan and Pincus, Eli and Morency, Louis-Philippe},
  journal = {IEEE Intelligent Systems},
  volume  = {31}, number = {6}, pages = {82--88}, year = {2016}
}
"""


def card(dataset: DatasetDict, summary: dict[str, Any], source: str) -> str:
    return dataset_card(
        dataset,
        pretty_name=f"CMU-MOSI ({source})",
        license="other",
        citation=CITATION,
        description=(
            "CMU-MOSI: 2,199 opinion segments from 93 YouTube movie-review videos, each with a sentiment score in "
            f"[-3, 3] averaged over five annotators. Built from the {source} form of the release. `label` is the "
            "score, `label_class` its sign (negative < 0, neutral = 0, positive > 0)."
        ),
        protocol=(
            "Standard split from the CMU Multimodal SDK folds: 1,284 train / 229 validation / 686 test segments. "
            "Report MAE, Pearson r, Acc-7 (scores clipped to [-3, 3] and rounded), Acc-5, and Acc-2 with weighted F1 "
            "both 'has0' (negative vs non-negative) and 'non0' (negative vs positive, zeros dropped)."
        ),
        summary=summary,
        task_categories=["text-classification", "audio-classification", "video-classification"],
    )


def main(argv: list[str] | None = None) -> DatasetDict:
    parser = argument_parser("Convert CMU-MOSI (MMSA raw, MMSA pickle or CMU-SDK .csd) into a Hugging Face dataset.")
    parser.add_argument("--source", choices=["raw", "mmsa-pickle", "csd"], default="raw")
    parser.add_argument("--folds", type=Path, help="the SDK standard folds JSON (required for csd)")
    raw = parser.add_argument_group("raw source")
    raw.add_argument("--label-file", default="label.csv", help="labels CSV, relative to --root")
    raw.add_argument("--opinion-labels", type=Path, help="OpinionLevelSentiment.csv, for segment start/end times")
    raw.add_argument("--text-only", action="store_true", help="labels and transcripts only, no media")
    raw.add_argument("--with-video", action="store_true", help="add frames sampled from each clip")
    raw.add_argument("--num-frames", type=positive_int, default=8)
    processed = parser.add_argument_group("mmsa-pickle source")
    processed.add_argument("--pickle", type=Path, help="default: ROOT/Processed/unaligned_50.pkl")
    processed.add_argument("--allow-pickle", action="store_true", help="I trust this pickle (it can run code)")
    sdk = parser.add_argument_group("csd source (file names relative to --root)")
    sdk.add_argument("--labels-csd", default="CMU_MOSI_Opinion_Labels.csd")
    sdk.add_argument("--words-csd", help="e.g. CMU_MOSI_TimestampedWords.csd, for transcripts")
    sdk.add_argument("--text-csd", help="e.g. CMU_MOSI_TimestampedWordVectors.csd")
    sdk.add_argument("--audio-csd", help="e.g. CMU_MOSI_COVAREP.csd")
    sdk.add_argument("--vision-csd", help="e.g. CMU_MOSI_Visual_Facet_41.csd")
    args = parser.parse_args(argv)
    datasets.disable_caching()
    builders = {"raw": build_raw, "mmsa-pickle": build_pickle, "csd": build_csd}
    return run(
        args,
        lambda report, cache: builders[args.source](args, report, cache),
        lambda dataset, summary: card(dataset, summary, args.source),
        label_column="label_class",
    )


if __name__ == "__main__":
    main_guard(main)
