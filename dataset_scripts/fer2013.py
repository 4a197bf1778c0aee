"""
FER-2013 (Goodfellow et al., 2013), image-folder version -> Hugging Face dataset.

    python -m dataset_scripts.fer2013 --root fer2013 --output data/fer2013

`train/<emotion>/*.jpg` and `test/<emotion>/*.jpg`, 48x48 grayscale faces, 7 emotions.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, DatasetDict, Features, Image, Value
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .common import BuildError, BuildReport, argument_parser, dataset_card, generate_split, main_guard, run


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


def rows(items: list[tuple[Path, int]], report: BuildReport) -> Iterator[dict[str, Any]]:
    for path, label in items:
        item_id = f"{path.parent.name}/{path.name}"
        try:
            with PILImage.open(path) as image:
                image.verify()
        except (UnidentifiedImageError, OSError) as error:
            report.skip(item_id, f"unreadable image ({error.__class__.__name__})")
            continue
        yield {"id": item_id, "image": {"bytes": path.read_bytes(), "path": path.name}, "label": label}


def build(root: Path, report: BuildReport, cache_dir: Path) -> DatasetDict:
    return DatasetDict(
        {
            split: generate_split(
                rows, FEATURES, cache_dir, split, items=scan_split(Path(root) / split), report=report
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
