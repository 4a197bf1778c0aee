"""
RAVDESS speech (Livingstone & Russo, 2018) -> Hugging Face dataset, from `Actor_XX/03-01-EE-II-SS-RR-AA.wav|flac`.

    python -m dataset_scripts.ravdess --root RAVDESS --output data/ravdess [--test-actors 21 22 23 24]

Speaker-independent split: actors 01-20 train, 21-24 test (or `actor_folds` for k-fold by actor). Audio is kept as
16 kHz mono (resampled from the original 48 kHz where needed).
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

from .common import (
    BuildError,
    BuildReport,
    ItemError,
    argument_parser,
    audio_file_16k,
    dataset_card,
    generate_split,
    main_guard,
    media_path,
    run,
)


EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
FILE_NAME = re.compile(
    r"^03-01-(?P<emotion>0[1-8])-(?P<intensity>0[12])-(?P<statement>0[12])-(?P<repetition>0[12])-"
    r"(?P<actor>\d\d)\.(?:wav|flac)$",
    re.IGNORECASE,
)
AUDIO_SUFFIXES = (".wav", ".flac")
FEATURES = Features(
    {
        "id": Value("string"),
        "audio": Audio(sampling_rate=16000, decode=False),
        "label": ClassLabel(names=EMOTIONS),
        "intensity": ClassLabel(names=["normal", "strong"]),
        "statement": Value("int32"),
        "text": Value("string"),
        "repetition": Value("int32"),
        "actor": Value("int32"),
        "gender": ClassLabel(names=["female", "male"]),
    }
)


def parse_name(path: Path) -> dict[str, Any]:
    """The fields a RAVDESS speech file name encodes; a name that breaks the scheme is an `ItemError`."""
    match = FILE_NAME.match(path.name)
    if match is None:
        raise ItemError(
            "not a RAVDESS speech file name; expected 03-01-EE-II-SS-RR-AA.wav (audio-only speech, emotion 01-08, "
            "intensity 01-02, statement 01-02, repetition 01-02, actor)"
        )
    actor = int(match["actor"])
    if match["emotion"] == "01" and match["intensity"] == "02":
        raise ItemError("neutral speech has no strong intensity in RAVDESS")
    if path.parent.name != f"Actor_{actor:02d}":
        raise ItemError(f"the name says actor {actor:02d} but the file is in {path.parent.name}")
    return {
        "id": path.stem,
        "label": int(match["emotion"]) - 1,
        "intensity": int(match["intensity"]) - 1,
        "statement": int(match["statement"]),
        "text": STATEMENTS[int(match["statement"])],
        "repetition": int(match["repetition"]),
        "actor": actor,
        "gender": 1 if actor % 2 else 0,
    }


def item_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def scan(root: Path, report: BuildReport) -> list[Path]:
    """The audio files of the Actor_XX folders; any other file is reported, not silently passed over."""
    actors = sorted(p for p in Path(root).glob("Actor_[0-9][0-9]") if p.is_dir())
    if not actors:
        raise BuildError(f"{root}: no Actor_XX folders; point --root at the RAVDESS speech release.")
    files = []
    for path in sorted(p for actor in actors for p in actor.iterdir()):
        if path.suffix.lower() in AUDIO_SUFFIXES:
            files.append(path)
        elif not path.name.startswith("."):
            report.skip(item_id(path), "not an audio file (.wav or .flac)")
    return files


def make_row(path: Path, root: Path) -> dict[str, Any]:
    return {**parse_name(path), "audio": audio_file_16k(media_path(root, path.relative_to(root), item_id(path)))}


def check_split_actors(by_split: dict[str, list[Path]], test_actors: tuple[int, ...] | None) -> None:
    """Actors asked for the test split (`test_actors`; None: the default) are in the release, and leave some to train
    on."""
    found = {int(parse_name(path)["actor"]) for paths in by_split.values() for path in paths}
    absent = sorted(set(test_actors or ()) - found)
    if found and absent:
        raise BuildError(
            f"--test-actors {' '.join(map(str, absent))}: no such actor in the release (it has actors "
            f"{', '.join(map(str, sorted(found)))})."
        )
    if found and not by_split["train"]:
        raise BuildError(f"--test-actors names every actor of the release ({len(found)}): none is left to train on.")


DEFAULT_TEST_ACTORS = (21, 22, 23, 24)


def build(root: Path, report: BuildReport, cache_dir: Path, test_actors: tuple[int, ...] | None = None) -> DatasetDict:
    """The dataset; `test_actors` (default: 21-24, where the release has them) are the test split."""
    root = Path(root)
    asked, test_actors = test_actors, test_actors or DEFAULT_TEST_ACTORS
    by_split = {"train": [], "test": []}
    for path in scan(root, report):
        try:
            actor = int(parse_name(path)["actor"])
        except ItemError as error:
            report.skip(item_id(path), str(error))
            continue
        by_split["test" if actor in test_actors else "train"].append(path)
    check_split_actors(by_split, asked)
    return DatasetDict(
        {
            split: generate_split(
                lambda path: make_row(path, root), items, item_id, FEATURES, cache_dir, split, report
            )
            for split, items in by_split.items()
            if items
        }
    )


def actor_folds(dataset: Dataset, k: int = 4) -> Iterator[tuple[list[int], Dataset, Dataset]]:
    """k speaker-independent folds: (test actors, train, test), actors dealt round-robin so genders balance."""
    actors = sorted(set(dataset["actor"]))
    column = dataset["actor"]
    for fold in range(k):
        held_out = actors[fold::k]
        test = [i for i, a in enumerate(column) if a in held_out]
        train = [i for i, a in enumerate(column) if a not in held_out]
        yield held_out, dataset.select(train), dataset.select(test)


CITATION = """
@article{livingstone2018ravdess,
  title   = {The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS)},
  author  = {Livingstone, Steven R. and Russo, Frank A.},
  journal = {PLoS ONE}, volume = {13}, number = {5}, pages = {e0196391}, year = {2018}
}
"""


def card(dataset: DatasetDict, summary: dict[str, Any]) -> str:
    return dataset_card(
        dataset,
        pretty_name="RAVDESS speech",
        license="cc-by-nc-sa-4.0",
        citation=CITATION,
        description=(
            "RAVDESS speech: 1,440 clips of 24 professional actors (12 female, 12 male) saying two fixed statements "
            "with 8 emotions at two intensities (neutral: normal only). 16 kHz mono."
        ),
        protocol="Speaker-independent: actors 01-20 train, 21-24 test (or k-fold by actor). Report accuracy and "
        "UA (mean per-class recall).",
        summary=summary,
        task_categories=["audio-classification"],
    )


def main(argv: list[str] | None = None) -> DatasetDict:
    parser = argument_parser("Convert RAVDESS speech into a Hugging Face dataset.")
    parser.add_argument("--test-actors", type=int, nargs="+", help="the test split's actors (default: 21 22 23 24)")
    args = parser.parse_args(argv)
    datasets.disable_caching()
    return run(
        args,
        lambda report, cache: build(args.root, report, cache, tuple(args.test_actors or ()) or None),
        card,
        "label",
    )


if __name__ == "__main__":
    main_guard(main)
