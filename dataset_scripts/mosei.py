"""
CMU-MOSEI -> Hugging Face dataset (MIAR's corpus), from any of the forms a user may hold, with the readers of the MMSA
family (`mmsa.py`) that MOSI uses:

    python -m dataset_scripts.mosei --source raw --root MOSEI --output data/mosei [--with-video] [--text-only]
    python -m dataset_scripts.mosei --source mmsa-pickle --root MOSEI --allow-pickle --output data/mosei-features
    python -m dataset_scripts.mosei --source csd --root cmumosei --folds standard_folds.json \\
        --audio-csd CMU_MOSEI_COVAREP.csd --vision-csd CMU_MOSEI_VisualFacet42.csd --output data/mosei-csd

Standard split 16,326 / 1,871 / 4,659 segments; sentiment in [-3, 3] (the SDK's labels sequence holds the sentiment
first, then six emotion intensities: the sentiment is taken).
"""

from datasets import DatasetDict

from . import mmsa
from .common import main_guard


MOSEI = mmsa.Corpus(
    name="CMU-MOSEI",
    metrics="mosi",
    label_range=(-3.0, 3.0),
    variants={"mosei": ("Processed/unaligned_50.pkl", {"train": 16326, "validation": 1871, "test": 4659})},
    labels_csd="CMU_MOSEI_Labels.csd",
    description=(
        "CMU-MOSEI: 22,856 annotated sentence segments from 3,228 YouTube videos of more than 1,000 speakers on 250 "
        "topics, each with a sentiment score in [-3, 3]. `label` is the score, `label_class` its sign (negative < 0, "
        "neutral = 0, positive > 0)."
    ),
    protocol=(
        "Standard split: 16,326 train / 1,871 validation / 4,659 test segments (the SDK's standard folds; MMSA's "
        "`mode` column and pickle keys). Report as for CMU-MOSI: MAE, Pearson r, Acc-7, Acc-5, Acc-2 and weighted "
        "F1 (has0 and non0)."
    ),
    citation="""
@inproceedings{zadeh2018mosei,
  title     = {Multimodal Language Analysis in the Wild: {CMU-MOSEI} Dataset and Interpretable Dynamic Fusion Graph},
  author    = {Bagher Zadeh, AmirAli and Liang, Paul Pu and Poria, Soujanya and Cambria, Erik and Morency,
               Louis-Philippe},
  booktitle = {Proceedings of ACL},
  pages     = {2236--2246},
  year      = {2018}
}
""",
)


def main(argv: list[str] | None = None) -> DatasetDict:
    return mmsa.main(MOSEI, argv)


if __name__ == "__main__":
    main_guard(main)
