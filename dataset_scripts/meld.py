"""
MELD (Poria et al., 2019) -> Hugging Face dataset, from the official annotation files (text, speaker, times).

    python -m dataset_scripts.meld --root MELD.Raw --output data/meld

Splits: the official train / dev (-> validation) / test. Standard metric: weighted F1 over the 7 emotions on test.
"""

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


def integer(row: dict[str, str], column: str, where: str) -> int:
    try:
        return int(row[column])
    except (TypeError, ValueError):
        raise BuildError(f"{where}: {column} {row[column]!r} is not a whole number.") from None


def read_split(path: Path, report: BuildReport) -> list[dict[str, Any]]:
    rows = []
    csv_rows = read_csv(path, COLUMNS, "--root must hold MELD's *_sent_emo.csv files.", report)
    for number, row in enumerate(csv_rows, start=2):
        where = f"{path}:{number}"
        for column, names in (("Emotion", EMOTIONS), ("Sentiment", SENTIMENTS)):
            if row[column] not in names:
                raise BuildError(f"{where}: {column} {row[column]!r} is not one of {', '.join(names)}.")
        dialogue, utterance = integer(row, "Dialogue_ID", where), integer(row, "Utterance_ID", where)
        rows.append(
            {
                "id": f"dia{dialogue}_utt{utterance}",
                "dialogue_id": dialogue,
                "utterance_id": utterance,
                "speaker": row["Speaker"],
                "text": row["Utterance"],
                "label": EMOTIONS.index(row["Emotion"]),
                "sentiment": SENTIMENTS.index(row["Sentiment"]),
                "season": integer(row, "Season", where),
                "episode": integer(row, "Episode", where),
                "start": timestamp_seconds(row["StartTime"], where),
                "end": timestamp_seconds(row["EndTime"], where),
            }
        )
    return rows


def build(root: Path, report: BuildReport, cache_dir: Path) -> DatasetDict:
    return DatasetDict(
        {
            split: generate_split(
                dict, read_split(Path(root) / name, report), lambda row: row["id"], FEATURES, cache_dir, split, report
            )
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
