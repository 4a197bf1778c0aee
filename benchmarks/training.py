"""
Fusion-head training on cached features at IEMOCAP scale: 5,531 utterances in 5 sessions (the 4-class counts), with
the widths of this project's encoders (MiniLM text 384, Whisper speech 384 at 50 steps/s, mini-Xception faces 128) and
realistic lengths (text 6-40 tokens, speech 1.5-10 s, 8 video frames).

    python benchmarks/training.py [--epochs 3] [--variants default downsample4 downsample4_bucketed]

Per variant: seconds per epoch (one fold), and the measured time of the whole leave-one-session-out 5-fold CV at
--epochs epochs per fold. Variants, run side by side: the default head; `audio_downsample=4` (speech at 12.5 steps/s);
and the same with length-bucketed batches (`train_sampling_strategy="group_by_length"`: less padding). Features are
generated from a per-utterance seed on the fly (2 GB on disk otherwise); the training path is the package's own
(`make_trainer`, `MultimodalCollator`).
"""

import argparse
import json
import tempfile
import time

import datasets
import numpy as np
from transformers import TrainingArguments, set_seed

from gia_mic.collator import MultimodalCollator
from gia_mic.training import make_trainer
from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition


SESSIONS = {1: 1085, 2: 1023, 3: 1151, 4: 1031, 5: 1241}  # IEMOCAP 4-class utterances per session (5,531)
SIZES = {"text": 384, "audio": 384, "vision": 128}
VARIANTS = {
    "default": ({}, "random"),
    "downsample4": ({"audio_downsample": 4}, "random"),
    "downsample4_bucketed": ({"audio_downsample": 4}, "group_by_length"),
}


def corpus(scale: float) -> tuple[datasets.Dataset, np.ndarray]:
    rng = np.random.default_rng(0)
    sessions = [s for s, count in SESSIONS.items() for _ in range(max(2, int(count * scale)))]
    count = len(sessions)
    audio_steps = (rng.uniform(1.5, 10.0, count) * 50).astype(int)
    rows = {
        "index": list(range(count)),
        "session": sessions,
        "text_length": rng.integers(6, 41, count).tolist(),
        "audio_length": audio_steps.tolist(),
        "length": audio_steps.tolist(),  # what group_by_length buckets on
        "label": rng.integers(0, 4, count).tolist(),
    }
    dataset = datasets.Dataset.from_dict(rows)
    dataset.set_transform(features_for)
    return dataset, np.array(sessions)


def features_for(batch: dict) -> dict:
    """Deterministic features per utterance, the label visible on one channel (so the loss can fall)."""
    out = {
        "text_features": [],
        "audio_features": [],
        "vision_features": [],
        "label": batch["label"],
        "length": batch["length"],
    }
    for index, text_length, audio_length, label in zip(
        batch["index"], batch["text_length"], batch["audio_length"], batch["label"]
    ):
        rng = np.random.default_rng(index)
        for modality, length in (("text", text_length), ("audio", audio_length), ("vision", 8)):
            values = rng.standard_normal((length, SIZES[modality]), dtype=np.float32)
            values[:, label] += 0.5
            out[f"{modality}_features"].append(values)
    return out


def train_folds(
    dataset: datasets.Dataset, sessions: np.ndarray, overrides: dict, sampling: str, epochs: int, folds: int
) -> dict:
    epoch_seconds, fold_seconds = [], []
    for held_out in sorted(set(sessions.tolist()))[:folds]:
        train = dataset.select(np.flatnonzero(sessions != held_out))
        set_seed(0)
        config = GiaMicConfig(**{f"{m}_feature_size": s for m, s in SIZES.items()}, num_labels=4, **overrides)
        model = GiaMicForEmotionRecognition(config)
        with tempfile.TemporaryDirectory() as output:
            args = TrainingArguments(
                output_dir=output,
                num_train_epochs=epochs,
                per_device_train_batch_size=32,
                learning_rate=1e-3,
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
                logging_strategy="no",
                use_cpu=True,
                train_sampling_strategy=sampling,
                length_column_name="length",
                seed=0,
            )
            collator = MultimodalCollator(ignore_keys=("length",))
            trainer = make_trainer(model, collator, args, train, None)
            start = time.perf_counter()
            trainer.train()
            fold_seconds.append(time.perf_counter() - start)
        epoch_seconds.append(fold_seconds[-1] / epochs)
    return {
        "seconds_per_epoch": float(np.mean(epoch_seconds)),
        "cv_seconds": float(np.sum(fold_seconds)),
        "folds": len(fold_seconds),
        "final_loss": trainer.state.log_history[-1].get("train_loss"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 5,531 utterances (smoke runs)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    datasets.disable_progress_bars()
    dataset, sessions = corpus(args.scale)
    print(f"{dataset.num_rows} utterances, {args.folds} folds x {args.epochs} epochs, batch 32\n")
    results = {}
    for name in args.variants:
        overrides, sampling = VARIANTS[name]
        results[name] = train_folds(dataset, sessions, overrides, sampling, args.epochs, args.folds)
        r = results[name]
        print(
            f"{name:<22} {r['seconds_per_epoch']:7.1f} s/epoch   {args.folds}-fold CV: {r['cv_seconds'] / 60:6.1f} min"
            f"   (final train loss {r['final_loss']:.3f})"
        )
    baseline = results[args.variants[0]]
    for name in args.variants[1:]:
        print(f"{name} / {args.variants[0]}: x{results[name]['cv_seconds'] / baseline['cv_seconds']:.2f} CV time")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
