"""
CMU-MOSI -> Hugging Face dataset, from any of the three forms a user may hold (the videos are YouTube clips that may
not be redistributed); the readers are those of the MMSA family (`mmsa.py`):

    # (a) MMSA raw release: label.csv + Raw/<video_id>/<clip_id>.mp4 (audio at 16 kHz, optional frames)
    python -m dataset_scripts.mosi --source raw --root MOSI --output data/mosi [--with-video] [--text-only]
    # (b) MMSA processed features (a pickle: it can run code, so it is read only with --allow-pickle)
    python -m dataset_scripts.mosi --source mmsa-pickle --root MOSI --allow-pickle --output data/mosi-features
    # (c) CMU Multimodal SDK computational sequences (.csd, HDF5)
    python -m dataset_scripts.mosi --source csd --root cmumosi --folds standard_folds.json --output data/mosi-csd

Standard split 1284 / 229 / 686 segments (the SDK's standard folds: 52 / 10 / 31 videos); sentiment in [-3, 3].
"""

from datasets import DatasetDict

from . import mmsa
from .common import main_guard


MOSI = mmsa.Corpus(
    name="CMU-MOSI",
    metrics="mosi",
    label_range=(-3.0, 3.0),
    variants={"mosi": ("Processed/unaligned_50.pkl", {"train": 1284, "validation": 229, "test": 686})},
    labels_csd="CMU_MOSI_Opinion_Labels.csd",
    description=(
        "CMU-MOSI: 2,199 opinion segments from 93 YouTube movie-review videos, each with a sentiment score in [-3, 3] "
        "averaged over five annotators. `label` is the score, `label_class` its sign (negative < 0, neutral = 0, "
        "positive > 0)."
    ),
    protocol=(
        "Standard split from the CMU Multimodal SDK folds: 1,284 train / 229 validation / 686 test segments. Report "
        "MAE, Pearson r, Acc-7 (scores clipped to [-3, 3] and rounded), Acc-5, and Acc-2 with weighted F1 both "
        "'has0' (negative vs non-negative) and 'non0' (negative vs positive, zeros dropped)."
    ),
    citation="""
@article{zadeh2016mosi,
  title   = {Multimodal Sentiment Intensity Analysis in Videos: Facial Gestures and Verbal Messages},
  author  = {Zadeh, Amir and Zellers, Rowan and Pincus, Eli and Morency, Louis-Philippe},
  journal = {IEEE Intelligent Systems},
  volume  = {31}, number = {6}, pages = {82--88}, year = {2016}
}
""",
)


def main(argv: list[str] | None = None) -> DatasetDict:
    return mmsa.main(MOSI, argv)


if __name__ == "__main__":
    main_guard(main)
