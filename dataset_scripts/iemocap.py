"""
IEMOCAP -> Hugging Face dataset, from the user's own `IEMOCAP_full_release/` (the licence forbids redistribution).

    python -m dataset_scripts.iemocap --root IEMOCAP_full_release --output data/iemocap-4class [--label-set 4class]
        [--with-video [--num-frames 8] [--video-half left|right]] [--strict] [--push-to-hub USER/iemocap]

One row per evaluated utterance with its transcript, 16 kHz audio and (optionally) frames cut from the dialog video.
Evaluation: leave-one-session-out 5-fold cross-validation (`leave_one_session_out`), WA and UA averaged over folds.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Image, List, Value
from tqdm.auto import tqdm

from gia_mic.errors import positive_int
from gia_mic.folds import leave_one_group_out

from .common import (
    BuildError,
    BuildReport,
    ItemError,
    argument_parser,
    audio_file_16k,
    dataset_card,
    generate_split,
    jpeg_frames,
    main_guard,
    media_path,
    read_text,
    run,
    video_frames,
)


EMOTION_CODES = ("neu", "hap", "exc", "sad", "ang", "fru", "sur", "fea", "dis", "oth", "xxx")
EMOTION_NAMES = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "ang": "angry",
    "fru": "frustrated",
    "sur": "surprised",
    "fea": "fearful",
    "dis": "disgusted",
    "oth": "other",
    "xxx": "no_agreement",
}
# label set -> (class names in ClassLabel order, emotion code -> class name)
LABEL_SETS: dict[str, tuple[list[str], dict[str, str]]] = {
    "4class": (
        ["neutral", "happy", "sad", "angry"],
        {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"},
    ),
    "6class": (
        ["happy", "sad", "neutral", "angry", "excited", "frustrated"],
        {code: EMOTION_NAMES[code] for code in ("hap", "sad", "neu", "ang", "exc", "fru")},
    ),
    "all": ([EMOTION_NAMES[c] for c in EMOTION_CODES], dict(EMOTION_NAMES)),
}
SUMMARY_LINE = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?) - (?P<end>\d+(?:\.\d+)?)\]\t(?P<id>\S+)\t(?P<emotion>\w+)\t"
    r"\[(?P<v>-?\d+(?:\.\d+)?), (?P<a>-?\d+(?:\.\d+)?), (?P<d>-?\d+(?:\.\d+)?)\]\s*$"
)
TRANSCRIPT_LINE = re.compile(r"^(?P<id>Ses\w+) \[(?P<start>[\d.]+)-(?P<end>[\d.]+)\]: ?(?P<text>.*)$")
UTTERANCE_SPEAKER = re.compile(r"_(?P<speaker>[FM])[0-9X]{3}$")


@dataclass
class Utterance:
    id: str
    session: int
    dialog: str
    speaker: str
    gender: str
    improvised: bool
    start: float
    end: float
    emotion: str
    valence: float
    activation: float
    dominance: float
    text: str
    wav: Path
    video: Path


def parse_evaluation_file(path: Path, report: BuildReport | None = None) -> Iterator[dict[str, Any]]:
    """The summary lines of one EmoEvaluation file; annotator detail lines are skipped, malformed summaries fail."""
    for number, line in enumerate(read_text(path, report).splitlines(), start=1):
        if not line.startswith("["):
            continue  # header, blank and annotator lines (C-E1:, A-E3:, ...)
        match = SUMMARY_LINE.match(line)
        if match is None:
            raise BuildError(
                f"{path}:{number}: malformed EmoEvaluation summary line {line!r}; expected "
                "'[START - END]<TAB>UTTERANCE<TAB>EMOTION<TAB>[V, A, D]'"
            )
        if match["emotion"] not in EMOTION_CODES:
            raise BuildError(
                f"{path}:{number}: unknown emotion code {match['emotion']!r}; "
                f"expected one of {', '.join(EMOTION_CODES)}"
            )
        yield {
            "id": match["id"],
            "start": float(match["start"]),
            "end": float(match["end"]),
            "emotion": match["emotion"],
            "valence": float(match["v"]),
            "activation": float(match["a"]),
            "dominance": float(match["d"]),
        }


def parse_transcription_file(path: Path, report: BuildReport | None = None) -> dict[str, str]:
    """Utterance id -> transcript; lines not of the form `<id> [start-end]: text` (e.g. `M: ...` noise) are skipped."""
    texts = {}
    for line in read_text(path, report).splitlines():
        match = TRANSCRIPT_LINE.match(line.strip())
        if match:
            texts[match["id"]] = match["text"].strip()
    return texts


def session_folders(root: Path, report: BuildReport) -> list[Path]:
    """The release's session folders; a missing one is reported (`--strict`: an error)."""
    sessions = {n: root / f"Session{n}" for n in range(1, 6)}
    present = [folder for folder in sessions.values() if (folder / "dialog" / "EmoEvaluation").is_dir()]
    if not present:
        raise BuildError(
            f"{root} is not an IEMOCAP release: expected folders Session1..Session5, each with "
            "dialog/EmoEvaluation/, dialog/transcriptions/, dialog/avi/DivX/ and sentences/wav/ "
            "(point --root at IEMOCAP_full_release)."
        )
    for folder in sessions.values():
        if folder not in present:
            report.skip(folder.name, "session missing (no dialog/EmoEvaluation/ folder)")
    return present


def scan_release(root: Path, report: BuildReport) -> Iterator[Utterance]:
    """Every evaluated utterance of the release, in session and dialog order."""
    for session_dir in session_folders(root, report):
        session = int(session_dir.name.removeprefix("Session"))
        dialog_dir = session_dir / "dialog"
        for evaluation in sorted((dialog_dir / "EmoEvaluation").glob("*.txt")):
            dialog = evaluation.stem
            transcript_file = dialog_dir / "transcriptions" / f"{dialog}.txt"
            texts = parse_transcription_file(transcript_file, report) if transcript_file.exists() else {}
            for entry in parse_evaluation_file(evaluation, report):
                speaker = UTTERANCE_SPEAKER.search(entry["id"])
                if speaker is None or not entry["id"].startswith(dialog):
                    raise BuildError(
                        f"{evaluation}: utterance id {entry['id']!r} is not of the form {dialog}_<F|M><NNN>"
                    )
                letter = speaker["speaker"]
                yield Utterance(
                    **entry,
                    session=session,
                    dialog=dialog,
                    speaker=f"Ses{session:02d}{letter}",
                    gender="female" if letter == "F" else "male",
                    improvised="_impro" in dialog,
                    text=texts.get(entry["id"]),
                    wav=session_dir / "sentences" / "wav" / dialog / f"{entry['id']}.wav",
                    video=dialog_dir / "avi" / "DivX" / f"{dialog}.avi",
                )


def features(label_set: str, with_video: bool) -> Features:
    columns = {
        "id": Value("string"),
        "session": Value("int32"),
        "dialog": Value("string"),
        "speaker": Value("string"),
        "gender": ClassLabel(names=["female", "male"]),
        "improvised": Value("bool"),
        "text": Value("string"),
        "audio": Audio(sampling_rate=16000, decode=False),
        "start": Value("float32"),
        "end": Value("float32"),
        "emotion": Value("string"),
        "label": ClassLabel(names=LABEL_SETS[label_set][0]),
        "valence": Value("float32"),
        "activation": Value("float32"),
        "dominance": Value("float32"),
    }
    if with_video:
        columns["frames"] = List(Image())
    return Features(columns)


def select_utterances(root: Path, label_set: str, report: BuildReport) -> list[Utterance]:
    """The utterances of the label set whose media and transcript exist; the rest is counted in the report."""
    names, mapping = LABEL_SETS[label_set]
    selected = []
    for utterance in tqdm(scan_release(root, report), desc="Reading EmoEvaluation", unit=" utterances"):
        if utterance.emotion not in mapping:
            report.exclude(f"not in {label_set}: {utterance.emotion}")
        elif utterance.start > utterance.end:
            report.skip(utterance.id, f"start {utterance.start} s is after end {utterance.end} s")
        elif not utterance.wav.is_file():
            report.skip(utterance.id, f"missing wav ({utterance.wav.relative_to(root)})")
        elif utterance.text is None:
            report.skip(utterance.id, "no transcript line")
        else:
            selected.append(utterance)
    return selected


def make_row(
    u: Utterance, root: Path, label_set: str, num_frames: int | None, video_half: str | None
) -> dict[str, Any]:
    """One utterance's row; its media are decoded and checked here (a bad file is an `ItemError`)."""
    names, mapping = LABEL_SETS[label_set]
    row = {
        "id": u.id,
        "session": u.session,
        "dialog": u.dialog,
        "speaker": u.speaker,
        "gender": u.gender,
        "improvised": u.improvised,
        "text": u.text,
        "audio": audio_file_16k(media_path(root, u.wav.relative_to(root), u.id)),
        "start": u.start,
        "end": u.end,
        "emotion": u.emotion,
        "label": names.index(mapping[u.emotion]),
        "valence": u.valence,
        "activation": u.activation,
        "dominance": u.dominance,
    }
    if num_frames:
        video = media_path(root, u.video.relative_to(root), u.id)
        if not video.is_file():
            raise ItemError(f"missing dialog video ({u.video.relative_to(root)})")
        frames = video_frames(video, num_frames, start=u.start, end=u.end)
        row["frames"] = jpeg_frames(crop_half(frame, video_half) for frame in frames)
    return row


def crop_half(frame, half: str | None):
    """IEMOCAP dialog videos show both actors side by side; keep the whole frame or one half."""
    if half is None:
        return frame
    middle = frame.shape[1] // 2
    return frame[:, :middle] if half == "left" else frame[:, middle:]


def build(
    root: Path,
    report: BuildReport,
    cache_dir: Path,
    label_set: str = "4class",
    num_frames: int | None = None,
    video_half: str | None = None,
) -> DatasetDict:
    """A `DatasetDict` with one `train` split (IEMOCAP has no official split: use `leave_one_session_out`)."""
    if label_set not in LABEL_SETS:
        raise BuildError(f"Unknown label set {label_set!r}; choose one of {', '.join(LABEL_SETS)}.")
    root = Path(root)
    utterances = select_utterances(root, label_set, report)
    train = generate_split(
        lambda u: make_row(u, root, label_set, num_frames, video_half),
        utterances,
        lambda u: u.id,
        features(label_set, bool(num_frames)),
        cache_dir,
        "train",
        report,
    )
    return DatasetDict(train=train)


def leave_one_session_out(dataset: Dataset) -> list[tuple[int, Dataset, Dataset]]:
    """The 5 standard folds: (test session, train = the other four sessions, test = that session)."""
    return leave_one_group_out(dataset, "session")


CITATION = """
@article{busso2008iemocap,
  title   = {IEMOCAP: Interactive emotional dyadic motion capture database},
  author  = {Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and Kazemzadeh, Abe and Mower, Emily and
             Kim, Samuel and Chang, Jeannette N. and Lee, Sungbok and Narayanan, Shrikanth S.},
  journal = {Language Resources and Evaluation},
  volume  = {42}, number = {4}, pages = {335--359}, year = {2008}
}
"""


def card(dataset: DatasetDict, summary: dict[str, Any], label_set: str) -> str:
    names, mapping = LABEL_SETS[label_set]
    merge = ", ".join(f"{code}->{name}" for code, name in mapping.items())
    return dataset_card(
        dataset,
        pretty_name=f"IEMOCAP ({label_set})",
        license="other",
        citation=CITATION,
        description=(
            "The Interactive Emotional Dyadic Motion Capture database (USC SAIL): 10,039 utterances of 10 actors in "
            "5 dyadic sessions, with transcripts, 16 kHz speech, dialog video and categorical + dimensional "
            f"(valence, activation, dominance) labels. Label set `{label_set}`: {', '.join(names)} ({merge}). "
            "The IEMOCAP licence forbids redistribution: keep this repository private."
        ),
        protocol=(
            "Leave-one-session-out 5-fold cross-validation (train on four sessions, test on the fifth; no speaker is "
            "in both). Report WA (accuracy) and UA (mean per-class recall), averaged over the five folds. The "
            "standard 4-class task merges happy and excited: 1,708 neutral + 1,636 happy + 1,084 sad + 1,103 angry "
            "= 5,531 utterances."
        ),
        summary=summary,
        task_categories=["audio-classification", "text-classification", "video-classification"],
    )


def main(argv: list[str] | None = None) -> DatasetDict:
    parser = argument_parser("Convert an IEMOCAP release into a Hugging Face dataset.")
    parser.add_argument("--label-set", choices=list(LABEL_SETS), default="4class")
    parser.add_argument("--with-video", action="store_true", help="add frames cut from the dialog videos")
    parser.add_argument("--num-frames", type=positive_int, default=8, help="frames per utterance with --with-video")
    parser.add_argument("--video-half", choices=["left", "right"], help="keep one half of the two-actor frame")
    args = parser.parse_args(argv)
    datasets.disable_caching()
    return run(
        args,
        lambda report, cache: build(
            args.root,
            report,
            cache,
            args.label_set,
            args.num_frames if args.with_video else None,
            args.video_half,
        ),
        lambda dataset, summary: card(dataset, summary, args.label_set),
        label_column="label",
    )


if __name__ == "__main__":
    main_guard(main)
