"""
MELD (Poria et al., 2019) -> Hugging Face dataset, from the official annotation files (text, speaker, times).

    python -m dataset_scripts.meld --root MELD.Raw --output data/meld

Splits: the official train / dev (-> validation) / test. Standard metric: weighted F1 over the 7 emotions on test.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, DatasetDict, Features, Value

from .common import BuildError, BuildReport, argument_parser, dataset_card, generate_split, main_guard, read_csv, run


EMOTIONS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
SENTIMENTS = ["negative", "neutral", "positive"]
FILES = {"train": "train_sent_emo.csv", "validation": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
COLUMNS = (
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
)
FEATURES = Features(
    {
        "id": Value("string"),
        "dialogue_id": Value("int32"),
        "utterance_id": Value("int32"),
        "speaker": Value("string"),
        "text": Value("string"),
        "label": ClassLabel(names=EMOTIONS),
        "sentiment": ClassLabel(names=SENTIMENTS),
        "season": Value("int32"),
        "episode": Value("int32"),
        "start": Value("float32"),
        "end": Value("float32"),
    }
)


def timestamp_seconds(value: str, where: str) -> float:
    """'00:16:16,059' -> 976.059"""
    try:
        clock, _, millis = value.partition(",")
        hours, minutes, seconds = (int(part) for part in clock.split(":"))
        return hours * 3600 + minutes * 60 + seconds + int(millis or 0) / 1000
    except ValueError:
        raise BuildError(f"{where}: time {value!r} is not HH:MM:SS,mmm.") from None


def read_split(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, row in enumerate(read_csv(path, COLUMNS, "--root must hold MELD's *_sent_emo.csv files."), start=2):
        where = f"{path}:{number}"
        for column, names in (("Emotion", EMOTIONS), ("Sentiment", SENTIMENTS)):
            if row[column] not in names:
                raise BuildError(f"{where}: {column} {row[column]!r} is not one of {', '.join(names)}.")
        rows.append(
            {
                "id": f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}",
                "dialogue_id": int(row["Dialogue_ID"]),
                "utterance_id": int(row["Utterance_ID"]),
                "speaker": row["Speaker"],
                "text": row["Utterance"],
                "label": EMOTIONS.index(row["Emotion"]),
                "sentiment": SENTIMENTS.index(row["Sentiment"]),
                "season": int(row["Season"]),
                "episode": int(row["Episode"]),
                "start": timestamp_seconds(row["StartTime"], where),
                "end": timestamp_seconds(row["EndTime"], where),
            }
        )
    return rows


def rows(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from items


def build(root: Path, report: BuildReport, cache_dir: Path) -> DatasetDict:
    return DatasetDict(
        {
            split: generate_split(rows, FEATURES, cache_dir, split, items=read_split(Path(root) / name))
            for split, name in FILES.items()
        }
    )


CITATION = """
@inproceedings{poria2019meld,
  title     = {MELD: A Multimodal Multi-Party Dataset for Emotion Recognition in Conversations},
  author    = {Poria, Soujanya and Hazarika, Devamanyu and Majumder, Navonil and Naik, Gautam and Cambria, Erik and
               Mihalcea, Rada},
  booktitle = {Proceedings of ACL}, pages = {527--536}, year = {2019}
}
"""


def card(dataset: DatasetDict, summary: dict[str, Any]) -> str:
    return dataset_card(
        dataset,
        pretty_name="MELD (text)",
        license="gpl-3.0",
        citation=CITATION,
        description=(
            "MELD: 13,708 utterances from 1,433 dialogues of the TV series Friends, each labelled with one of 7 "
            "emotions and a sentiment. This build holds the official annotation files: transcript, speaker, "
            "dialogue/utterance ids and times."
        ),
        protocol="Official splits (train 9,989 / dev 1,109 / test 2,610). Report weighted F1 over the 7 emotions "
        "on test.",
        summary=summary,
        task_categories=["text-classification"],
    )


def main(argv: list[str] | None = None) -> DatasetDict:
    args = argument_parser("Convert MELD's annotation files into a Hugging Face dataset.").parse_args(argv)
    datasets.disable_caching()
    return run(args, lambda report, cache: build(args.root, report, cache), card, label_column="label")


if __name__ == "__main__":
    main_guard(main)
