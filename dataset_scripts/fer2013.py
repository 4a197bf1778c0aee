"""
FER-2013 (Goodfellow et al., 2013), image-folder version -> Hugging Face dataset.

    python -m dataset_scripts.fer2013 --root fer2013 --output data/fer2013

`train/<emotion>/*.jpg` and `test/<emotion>/*.jpg`, 48x48 grayscale faces, 7 emotions.
"""

from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, DatasetDict, Features, Image, Value

from .common import (
    BuildError,
    BuildReport,
    argument_parser,
    dataset_card,
    generate_split,
    image_file,
    main_guard,
    media_path,
    run,
)


EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
FEATURES = Features({"id": Value("string"), "image": Image(), "label": ClassLabel(names=EMOTIONS)})


def scan_split(folder: Path) -> list[tuple[Path, int]]:
    if not folder.is_dir():
        raise BuildError(f"{folder} not found: --root must hold train/<emotion>/ and test/<emotion>/ folders.")
    items = []
    for emotion_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if emotion_dir.name not in EMOTIONS:
            raise BuildError(f"{emotion_dir}: unknown emotion folder; expected one of {', '.join(EMOTIONS)}.")
        label = EMOTIONS.index(emotion_dir.name)
        items += [(path, label) for path in sorted(emotion_dir.iterdir()) if path.is_file()]
    return items


def item_id(item: tuple[Path, int]) -> str:
    return f"{item[0].parent.name}/{item[0].name}"


def make_row(item: tuple[Path, int], root: Path) -> dict[str, Any]:
    """One image's row, decoded completely first (a truncated or empty image is skipped and reported)."""
    path, label = item
    return {
        "id": item_id(item),
        "image": image_file(media_path(root, path.relative_to(root), item_id(item))),
        "label": label,
    }


def build(root: Path, report: BuildReport, cache_dir: Path) -> DatasetDict:
    root = Path(root)
    return DatasetDict(
        {
            split: generate_split(
                lambda item: make_row(item, root),
                scan_split(root / split),
                item_id,
                FEATURES,
                cache_dir,
                split,
                report,
            )
            for split in ("train", "test")
        }
    )


CITATION = """
@inproceedings{goodfellow2013challenges,
  title     = {Challenges in Representation Learning: A Report on Three Machine Learning Contests},
  author    = {Goodfellow, Ian J. and Erhan, Dumitru and Carrier, Pierre Luc and Courville, Aaron and others},
  booktitle = {Neural Information Processing (ICONIP)}, pages = {117--124}, year = {2013}
}
"""


def card(dataset: DatasetDict, summary: dict[str, Any]) -> str:
    return dataset_card(
        dataset,
        pretty_name="FER-2013",
        license="other",
        citation=CITATION,
        description="FER-2013: 35,887 48x48 grayscale face images in 7 emotions (ICML 2013 representation-learning "
        "challenge; research use).",
        protocol="train (28,709) / test (7,178, the public + private test sets). Report accuracy on test.",
        summary=summary,
        task_categories=["image-classification"],
    )


def main(argv: list[str] | None = None) -> DatasetDict:
    args = argument_parser("Convert the FER-2013 image folders into a Hugging Face dataset.").parse_args(argv)
    datasets.disable_caching()
    return run(args, lambda report, cache: build(args.root, report, cache), card, label_column="label")


if __name__ == "__main__":
    main_guard(main)
