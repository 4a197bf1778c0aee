"""
CH-SIMS (v1) and CH-SIMS v2 -> Hugging Face dataset (MCIHN's corpus), with the readers of the MMSA family
(`mmsa.py`) that MOSI uses. Transcripts are Chinese and kept as UTF-8; each segment keeps its per-modality labels.

    python -m dataset_scripts.sims --source raw --root SIMS --output data/sims [--with-video] [--text-only]
    python -m dataset_scripts.sims --source mmsa-pickle --root SIMS --allow-pickle --output data/sims-features
    python -m dataset_scripts.sims --release v2 --source mmsa-pickle --root SIMSv2 --allow-pickle --output data/sims2

Standard splits: SIMS 1,368 / 456 / 457 (`Processed/unaligned_39.pkl`), SIMS v2 2,722 / 647 / 1,034
(`sims_unaligned.pkl`); labels in [-1, 1].
"""

from datasets import DatasetDict

from . import mmsa
from .common import main_guard


SIMS = mmsa.Corpus(
    name="CH-SIMS",
    metrics="sims",
    label_range=(-1.0, 1.0),
    variants={
        "v1": ("Processed/unaligned_39.pkl", {"train": 1368, "validation": 456, "test": 457}),
        "v2": ("sims_unaligned.pkl", {"train": 2722, "validation": 647, "test": 1034}),
    },
    modality_labels=True,
    neutral_band=0.1,
    description=(
        "CH-SIMS: Chinese video segments (movies, TV series, shows) with a multimodal sentiment label and one label "
        "per modality, each in [-1, 1]: `label` (the multimodal label), `label_T` (text alone), `label_A` (audio "
        "alone), `label_V` (vision alone), annotated independently. `label_class` is MMSA's 3-class binning of "
        "`label`: negative [-1, -0.1], neutral (-0.1, 0.1], positive (0.1, 1]. Transcripts (`text`) are Chinese, "
        "in UTF-8: pair them with a Chinese (or multilingual) text encoder, e.g. any `AutoModel` Chinese BERT."
    ),
    protocol=(
        "Standard splits from the release's `mode` column / pickle keys: SIMS 1,368 train / 456 validation / 457 "
        "test; SIMS v2 2,722 / 647 / 1,034. Report MMSA's SIMS metrics: Acc-2 (negative [-1, 0] vs positive "
        "(0, 1]), Acc-3 and Acc-5 on SIMS's bins (-0.1 / 0.1 and -0.7 / -0.1 / 0.1 / 0.7), weighted F1 of the 2 "
        "classes, MAE and Pearson r (predictions and labels clipped to [-1, 1]). Train on a per-modality label with "
        "`gia-mic train --label_column label_T` (or label_A, label_V)."
    ),
    citation="""
@inproceedings{yu2020chsims,
  title     = {{CH-SIMS}: A {Chinese} Multimodal Sentiment Analysis Dataset with Fine-grained Annotation of Modality},
  author    = {Yu, Wenmeng and Xu, Hua and Meng, Fanyang and Zhu, Yilin and Ma, Yixiao and Wu, Jiele and Zou, Jiyun
               and Yang, Kaicheng},
  booktitle = {Proceedings of ACL},
  pages     = {3718--3727},
  year      = {2020}
}
""",
)


def main(argv: list[str] | None = None) -> DatasetDict:
    return mmsa.main(SIMS, argv)


if __name__ == "__main__":
    main_guard(main)
