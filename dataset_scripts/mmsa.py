"""
The MMSA family of corpora: CMU-MOSI, CMU-MOSEI and CH-SIMS share their release layouts, and one reader per form
serves all three (each corpus's script, `mosi.py`, `mosei.py`, `sims.py`, only describes its corpus):

- raw: `label.csv` (`video_id,clip_id,text,label[,label_T,label_A,label_V],annotation,mode`) +
  `Raw/<video_id>/<clip_id>.mp4` (audio at 16 kHz, optional frames);
- mmsa-pickle: MMSA's processed features (a pickle: it can run code, so it is read only with --allow-pickle);
- csd: CMU Multimodal SDK computational sequences (HDF5; MOSI and MOSEI).

Splits come from the release's own `mode` column / pickle keys (or the SDK's standard folds) and are checked against
the corpus's standard counts: a disagreement is printed and recorded in `build_report.json`.
"""

import csv
import io
import json
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Audio, ClassLabel, DatasetDict, Features, Image, List, Value
from tqdm.auto import tqdm

from gia_mic.errors import positive_int

from .common import (
    BuildError,
    BuildReport,
    ItemError,
    argument_parser,
    dataset_card,
    generate_split,
    jpeg_frames,
    media_path,
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
MODALITY_LABELS = {"label_T": "text", "label_A": "audio", "label_V": "vision"}


@dataclass(frozen=True)
class Corpus:
    """What distinguishes one corpus of the family: its labels, standard splits, default files and its card."""

    name: str
    metrics: str  # the metric family the trainer picks from the dataset card: "mosi" or "sims"
    label_range: tuple[float, float]
    # release variant -> (default pickle path under --root, standard split sizes)
    variants: dict[str, tuple[str, dict[str, int]]]
    description: str
    protocol: str
    citation: str
    labels_csd: str | None = None  # default labels file of the SDK release (None: no SDK release)
    modality_labels: bool = False  # label_T / label_A / label_V per segment (CH-SIMS)
    neutral_band: float = 0.0  # |label| <= band is neutral in `label_class` (SIMS: 0.1, MMSA's 3-class bins)
    task_categories: list[str] = field(
        default_factory=lambda: ["text-classification", "audio-classification", "video-classification"]
    )

    def sentiment_class(self, label: float) -> int:
        """negative / neutral / positive: the sign, or MMSA's bins for SIMS ([-1, -0.1], (-0.1, 0.1], (0.1, 1])."""
        if self.neutral_band == 0.0:
            return 0 if label < 0 else 1 if label == 0 else 2
        return 0 if label <= -self.neutral_band else 1 if label <= self.neutral_band else 2

    def check_label(self, value: float | None, where: str) -> float:
        low, high = self.label_range
        if value is None or not low <= value <= high:
            raise BuildError(f"{where} is not a {self.name} score in [{low:g}, {high:g}]; got {value!r}.")
        return value


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


def base_features(corpus: Corpus) -> dict[str, Any]:
    return {
        "id": Value("string"),
        "video_id": Value("string"),
        "clip_id": Value("string"),
        "text": Value("string"),
        "label": Value("float32"),
        **{name: Value("float32") for name in MODALITY_LABELS if corpus.modality_labels},
        "label_class": ClassLabel(names=SENTIMENT_CLASSES),
        "start": Value("float32"),
        "end": Value("float32"),
    }


def base_row(
    corpus: Corpus,
    video_id: str,
    clip_id: str,
    text: str,
    label: float,
    start=None,
    end=None,
    modality_labels: dict[str, float] | None = None,
) -> dict[str, Any]:
    return {
        "id": f"{video_id}_{clip_id}",
        "video_id": video_id,
        "clip_id": clip_id,
        "text": text,
        "label": label,
        **(modality_labels or {}),
        "label_class": corpus.sentiment_class(label),
        "start": start,
        "end": end,
    }


def build_splits(
    rows_by_split: dict[str, Any], make_row, features: Features, cache_dir: Path, report: BuildReport
) -> DatasetDict:
    """One on-disk split per split that has items (`rows_by_split` values may be lazy iterables)."""
    return DatasetDict(
        {
            split: generate_split(
                make_row, rows_by_split[split], lambda item: item["id"], features, cache_dir, split, report
            )
            for split in SPLITS
            if rows_by_split.get(split) is not None
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


def raw_items(args, corpus: Corpus, report: BuildReport) -> dict[str, list[dict[str, Any]]]:
    root = Path(args.root)
    label_file = root / args.label_file
    folds = load_folds(args.folds)
    spans = read_opinion_labels(args.opinion_labels)
    by_split: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    columns = (*RAW_COLUMNS, *(MODALITY_LABELS if corpus.modality_labels else ()))
    rows = read_csv(
        label_file, columns, "the MMSA raw release has label.csv at its root (or pass --label-file).", report
    )
    for number, row in enumerate(rows, start=2):
        where = f"{label_file}:{number}"
        label = corpus.check_label(
            _float(row["label"], f"{where}: label"), f"{where} ({row['video_id']}_{row['clip_id']}): label"
        )
        per_modality = {
            name: corpus.check_label(_float(row[name], f"{where}: {name}"), f"{where}: {name}")
            for name in MODALITY_LABELS
            if corpus.modality_labels
        }
        video_id, clip_id = row["video_id"], row["clip_id"]
        start, end = spans.get((video_id, clip_id), (row.get("start"), row.get("end")))
        item = base_row(
            corpus, video_id, clip_id, row["text"] or "", label, _float(start, where), _float(end, where), per_modality
        )
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


def build_raw(args, corpus: Corpus, report: BuildReport, cache_dir: Path) -> DatasetDict:
    columns = base_features(corpus)
    if not args.text_only:
        columns["audio"] = Audio(sampling_rate=16000, decode=False)
        if args.with_video:
            columns["frames"] = List(Image())
    items = raw_items(args, corpus, report)
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
        raise BuildError(f"{path} not found: pass --pickle with the MMSA release's processed features file.")
    warnings.warn(f"Unpickling {path}: this runs code from the file; only do it for files you trust.", stacklevel=2)
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - explicit opt-in above
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as error:
        raise BuildError(f"{path}: not a pickle that can be read ({type(error).__name__}: {error}).") from None


def checked_arrays(split_data: dict[str, Any], split: str, path: Path, corpus: Corpus) -> dict[str, np.ndarray]:
    """
    The split's arrays in MMSA's layout, each checked for its key and shape before any row is built: `id`, `raw_text`
    and the labels (N,), the feature blocks (N, T, D), `text_bert` (N, 3, T) and the lengths (N,) when present.
    """
    if not isinstance(split_data, dict):
        raise BuildError(f"{path}: split {split!r} is a {type(split_data).__name__}; expected a dict of arrays.")
    label_keys = [
        "regression_labels",
        *(f"regression_labels_{m[-1]}" for m in MODALITY_LABELS if corpus.modality_labels),
    ]
    required = ("id", "raw_text", "text", "audio", "vision", *label_keys)
    missing = [key for key in required if key not in split_data]
    if missing:
        raise BuildError(
            f"{path}: split {split!r} lacks key(s) {missing}; the MMSA layout has {', '.join(required)} "
            "(and optionally text_bert, audio_lengths, vision_lengths)."
        )
    count = len(split_data["id"])
    shapes = {
        **{key: f"({count},)" for key in ("id", "raw_text", *label_keys, "audio_lengths", "vision_lengths")},
        **{key: f"({count}, length, size)" for key in ("text", "audio", "vision")},
        "text_bert": f"({count}, 3, length)",
    }
    arrays = {}
    for key, expected in shapes.items():
        if key not in split_data:
            continue
        value = split_data[key] if key in ("id", "raw_text") else np.asarray(split_data[key])
        rank = expected.count(",") + (0 if expected.endswith(",)") else 1)
        shape = (len(value),) if key in ("id", "raw_text") else value.shape
        if len(shape) != rank or shape[0] != count or (key == "text_bert" and shape[1] != 3):
            raise BuildError(f"{path}: split {split!r}: key {key!r} has shape {shape}; expected {expected}.")
        if key not in ("id", "raw_text") and value.dtype.kind not in "biuf":
            raise BuildError(f"{path}: split {split!r}: key {key!r} holds {value.dtype} values; expected numbers.")
        arrays[key] = value
    return arrays


def real_lengths(arrays: dict[str, np.ndarray], split: str, path: Path) -> dict[str, np.ndarray]:
    """
    Each segment's real length per modality: from `text_bert`'s attention-mask row (0/1) and `*_lengths` (whole
    numbers from 0 to the padded length) where the pickle has them, else the padded length. Anything else is an
    error naming the key and the segment, never a silent cut.
    """
    count = len(arrays["id"])
    lengths = {m: np.full(count, arrays[m].shape[1]) for m in ("text", "audio", "vision")}
    if "text_bert" in arrays:
        mask = arrays["text_bert"][:, 1]
        bad = ~np.isin(mask, (0, 1)).all(axis=1)
        check_rows(bad, arrays, split, path, "text_bert's attention mask (row 1) holds values other than 0 and 1")
        lengths["text"] = mask.sum(-1).astype(int)
    for m in ("audio", "vision"):
        if f"{m}_lengths" in arrays:
            given = arrays[f"{m}_lengths"].astype(np.float64)
            bad = ~np.isfinite(given) | (given != np.round(given)) | (given < 0) | (given > arrays[m].shape[1])
            check_rows(bad, arrays, split, path, f"{m}_lengths is not a whole number from 0 to {arrays[m].shape[1]}")
            lengths[m] = given.astype(int)
    return lengths


def check_rows(bad: np.ndarray, arrays: dict, split: str, path: Path, problem: str) -> None:
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise BuildError(
            f"{path}: split {split!r}, id {arrays['id'][first]!r}: {problem} ({int(bad.sum())} segment(s))."
        )


def pickle_items(split_data: dict[str, Any], split: str, path: Path, corpus: Corpus) -> Iterator[dict[str, Any]]:
    """
    The split's segments, built one at a time from the arrays the pickle holds (no second copy of the corpus): real
    lengths from `text_bert` / `*_lengths`, `-inf` / NaN (MMSA's audio padding) -> 0.
    """
    arrays = checked_arrays(split_data, split, path, corpus)
    lengths = real_lengths(arrays, split, path)
    for i in range(len(arrays["id"])):
        video_id, _, clip_id = str(arrays["id"][i]).partition("$_$")
        if not clip_id:
            raise BuildError(f"{path}: id {arrays['id'][i]!r} in split {split!r} is not '<video_id>$_$<clip_id>'.")
        where = f"{path}: split {split!r}, id {arrays['id'][i]!r}"
        label = corpus.check_label(float(arrays["regression_labels"][i]), f"{where}: regression_labels")
        per_modality = {
            name: corpus.check_label(float(arrays[f"regression_labels_{name[-1]}"][i]), f"{where}: {name}")
            for name in MODALITY_LABELS
            if corpus.modality_labels
        }
        item = base_row(corpus, video_id, clip_id, str(arrays["raw_text"][i]), label, modality_labels=per_modality)
        for name, key, length in (
            ("text_features", "text", lengths["text"][i]),
            ("audio_features", "audio", lengths["audio"][i]),
            ("vision_features", "vision", lengths["vision"][i]),
        ):
            values = np.asarray(arrays[key][i], dtype=np.float32)[: max(int(length), 1)]
            item[name] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        yield item


def build_pickle(args, corpus: Corpus, report: BuildReport, cache_dir: Path) -> DatasetDict:
    path = Path(args.pickle) if args.pickle else Path(args.root) / corpus.variants[args.release][0]
    data = load_pickle(path, args.allow_pickle)
    if not isinstance(data, dict):
        raise BuildError(
            f"{path}: expected a dict of split name -> arrays (MMSA's layout); got {type(data).__name__}."
        )
    by_split = {}
    for key, split_data in data.items():
        if key not in SPLIT_ALIASES:
            raise BuildError(f"{path}: unknown split {key!r}; expected train, valid and test.")
        by_split[SPLIT_ALIASES[key]] = pickle_items(split_data, key, path, corpus)
    columns = Features({**base_features(corpus), **feature_columns()})
    return build_splits(by_split, dict, columns, cache_dir, report)


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


def csd_items(args, corpus: Corpus, report: BuildReport) -> dict[str, list[dict[str, Any]]]:
    root = Path(args.root)
    folds = load_folds(args.folds)
    if folds is None:
        raise BuildError("--source csd needs --folds (the SDK's standard folds JSON) to form the splits.")
    labels = read_csd(root / (args.labels_csd or corpus.labels_csd))
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
            where = f"{args.labels_csd or corpus.labels_csd}: data/{video_id}, segment {clip_index}: label"
            label = corpus.check_label(float(values[row][0]), where)  # MOSEI: sentiment, then six emotions
            item = base_row(corpus, video_id, str(clip_index), text, label, float(start), float(end))
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
                by_split[split_of(video_id, None, folds, f"{where.rsplit(',', 1)[0]}")].append(item)
    return by_split


def build_csd(args, corpus: Corpus, report: BuildReport, cache_dir: Path) -> DatasetDict:
    if corpus.labels_csd is None:
        raise BuildError(f"{corpus.name} has no CMU Multimodal SDK release; use --source raw or mmsa-pickle.")
    columns = {
        **base_features(corpus),
        **{
            name: List(List(Value("float32")))
            for name in FEATURE_COLUMNS
            if getattr(args, f"{name.split('_')[0]}_csd")
        },
    }
    return build_splits(csd_items(args, corpus, report), dict, Features(columns), cache_dir, report)


# ---------------------------------------------------------------------------------------------------------------------
# Card and command line
# ---------------------------------------------------------------------------------------------------------------------


def card(corpus: Corpus, dataset: DatasetDict, summary: dict[str, Any], source: str) -> str:
    return dataset_card(
        dataset,
        pretty_name=f"{corpus.name} ({source})",
        license="other",
        citation=corpus.citation,
        description=f"{corpus.description} Built from the {source} form of the release.",
        protocol=corpus.protocol,
        summary=summary,
        task_categories=corpus.task_categories,
        metrics=corpus.metrics,
    )


def main(corpus: Corpus, argv: list[str] | None = None) -> DatasetDict:
    sources = ["raw", "mmsa-pickle", *(["csd"] if corpus.labels_csd else [])]
    parser = argument_parser(f"Convert {corpus.name} ({', '.join(sources)}) into a Hugging Face dataset.")
    parser.add_argument("--source", choices=sources, default="raw")
    parser.add_argument(
        "--release",
        choices=list(corpus.variants),
        default=next(iter(corpus.variants)),
        help="which release's standard split sizes to check against (and its default pickle)",
    )
    parser.add_argument("--folds", type=Path, help="the SDK standard folds JSON (required for csd)")
    raw = parser.add_argument_group("raw source")
    raw.add_argument("--label-file", default="label.csv", help="labels CSV, relative to --root")
    raw.add_argument("--opinion-labels", type=Path, help="OpinionLevelSentiment.csv, for segment start/end times")
    raw.add_argument("--text-only", action="store_true", help="labels and transcripts only, no media")
    raw.add_argument("--with-video", action="store_true", help="add frames sampled from each clip")
    raw.add_argument("--num-frames", type=positive_int, default=8)
    processed = parser.add_argument_group("mmsa-pickle source")
    processed.add_argument("--pickle", type=Path, help="the features file (default: the release's, under --root)")
    processed.add_argument("--allow-pickle", action="store_true", help="I trust this pickle (it can run code)")
    if corpus.labels_csd:
        sdk = parser.add_argument_group("csd source (file names relative to --root)")
        sdk.add_argument("--labels-csd", default=corpus.labels_csd)
        sdk.add_argument("--words-csd", help="the TimestampedWords sequence, for transcripts")
        sdk.add_argument("--text-csd", help="e.g. the TimestampedWordVectors sequence")
        sdk.add_argument("--audio-csd", help="e.g. the COVAREP sequence")
        sdk.add_argument("--vision-csd", help="e.g. the Facet sequence")
    args = parser.parse_args(argv)
    datasets.disable_caching()
    builders = {"raw": build_raw, "mmsa-pickle": build_pickle, "csd": build_csd}
    return run(
        args,
        lambda report, cache: builders[args.source](args, corpus, report, cache),
        lambda dataset, summary: card(corpus, dataset, summary, args.source),
        label_column="label_class",
        standard_splits=corpus.variants[args.release][1],
    )
