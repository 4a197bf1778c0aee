"""
Fusion-head training on cached features at IEMOCAP scale: 5,531 utterances in 5 sessions (the 4-class counts), with
the widths of this project's encoders (MiniLM text 384, Whisper speech 384 at 50 steps/s, mini-Xception faces 128) and
realistic lengths (text 6-40 tokens, speech 1.5-10 s, 8 video frames).

    python benchmarks/training.py [--epochs 1] [--steps 6] [--rounds 1] [--work DIR] [--profile]

The features are written once, as `gia-mic extract-features` writes them (Arrow, one `Array2D` (steps, width) per
row and modality, about 2.7 GB; reused from --work), and everything runs through the package's own training path
(`load_training_dataset`, `build_model_and_collator`, `make_trainer`, `cross_validate`: what `gia-mic cv` runs).

1. Seconds per epoch of one fold, side by side: each change that speeds the head up, added one after another to the
   paper's head (width 256, speech at 50 steps/s, shuffled batches, float32). Each variant trains one epoch over
   --steps batches drawn from the fold, in --rounds interleaved rounds; an epoch of the fold is the mean step time
   (loading included) x the fold's steps per epoch.
2. The whole leave-one-session-out 5-fold CV of the CPU recipe (the last variant), measured end to end for --epochs
   epochs per fold, with each fold's held-out UA: the features carry the label on one channel, so a recipe that
   learns nothing shows.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from gia_mic.collator import MultimodalCollator
from gia_mic.training import (
    DataArguments,
    ModelArguments,
    build_model_and_collator,
    cross_validate,
    feature_array,
    load_training_dataset,
    make_trainer,
)


SESSIONS = {1: 1085, 2: 1023, 3: 1151, 4: 1031, 5: 1241}  # IEMOCAP 4-class utterances per session (5,531)
EMOTIONS = ["neutral", "happy", "sad", "angry"]
SIZES = {"text": 384, "audio": 384, "vision": 128}
BATCH_SIZE = 32
# (name, GiaMicConfig overrides, TrainingArguments), each adding one change to the one before.
PAPER = "hidden_size=256,intermediate_size=1024"
VARIANTS = [
    ("paper head, speech 50/s", PAPER, {}),
    ("+ audio_downsample=4", PAPER + ",audio_downsample=4", {}),
    ("+ group_by_length", PAPER + ",audio_downsample=4", {"train_sampling_strategy": "group_by_length"}),
    ("+ bf16 autocast", PAPER + ",audio_downsample=4", {"train_sampling_strategy": "group_by_length", "bf16": True}),
    (
        "+ width 128 (CPU recipe)",  # the starter's width (the starter: FFN 256, no bf16, no bucketing)
        "hidden_size=128,intermediate_size=512,audio_downsample=4",
        {"train_sampling_strategy": "group_by_length", "bf16": True},
    ),
]


def utterances(scale: float):
    """Deterministic rows per utterance; the label raises one feature channel so that the head can learn it."""
    rng = np.random.default_rng(0)
    for session, count in SESSIONS.items():
        for _ in range(max(2, int(count * scale))):
            label = int(rng.integers(len(EMOTIONS)))
            lengths = {
                "text": int(rng.integers(6, 41)),
                "audio": int(rng.uniform(1.5, 10.0) * 50),
                "vision": 8,
            }
            row = {"session": session, "label": label}
            for modality, length in lengths.items():
                values = rng.standard_normal((length, SIZES[modality]), dtype=np.float32)
                values[:, label] += 0.5
                row[f"{modality}_features"] = values
            yield row


def feature_dataset(work: Path, scale: float) -> Path:
    path = work / f"iemocap-shaped-features-v2-{scale:g}"
    if not (path / "dataset_dict.json").exists():
        features = Features(
            {
                "session": Value("int32"),
                "label": ClassLabel(names=EMOTIONS),
                **{f"{m}_features": feature_array(width) for m, width in SIZES.items()},
            }
        )
        with tempfile.TemporaryDirectory(dir=work) as cache:
            split = Dataset.from_generator(utterances, features=features, cache_dir=cache, gen_kwargs={"scale": scale})
            DatasetDict(train=split).save_to_disk(str(path))
    return path


class StepClock(TrainerCallback):
    """Wall time of each step, loading its batch included: from the epoch's start or the previous step's end."""

    def __init__(self):
        self.marks: list[float] = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.marks.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.marks.append(time.perf_counter())

    def intervals(self) -> list[float]:
        return list(np.diff(self.marks))


def training_args(output: str, **options) -> TrainingArguments:
    defaults = {
        "per_device_train_batch_size": BATCH_SIZE,
        "learning_rate": 1e-3,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "logging_strategy": "no",
        "use_cpu": True,
        "seed": 0,
    }
    return TrainingArguments(output_dir=output, **{**defaults, **options})


def fold_one(path: Path) -> Dataset:
    """Fold 1's training part (session 1 held out), with the length column that bucketing reads."""
    args = training_args(tempfile.gettempdir(), train_sampling_strategy="group_by_length")
    dataset = load_training_dataset(DataArguments(dataset=str(path)), args)["train"]
    return dataset.filter(lambda s: s != 1, input_columns="session")


def epoch_sample(fold: Dataset, options: dict, steps: int, seed: int) -> tuple[Dataset, int]:
    """
    `steps` batches spread evenly over one epoch of `fold` in the order the variant's sampler gives (shuffled, or
    bucketed by length), after a warm-up batch, as one small dataset to read in that order; and the number of full
    batches in the epoch.
    """
    batch_size = options.get("per_device_train_batch_size", BATCH_SIZE)
    generator = torch.Generator().manual_seed(seed)
    if options.get("train_sampling_strategy") == "group_by_length":
        order = list(LengthGroupedSampler(batch_size, lengths=fold["length"][:], generator=generator))
    else:
        order = torch.randperm(fold.num_rows, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    chosen = np.linspace(0, len(batches) - 1, min(steps, len(batches))).round().astype(int)
    warm_up = chosen[:1]  # the first batch twice: its first pass (allocations) is not timed
    return fold.select([index for b in (*warm_up, *chosen) for index in batches[b]]), len(batches)


def epoch_seconds(fold: Dataset, path: Path, variant: tuple, steps: int, seed: int) -> tuple[float, float]:
    """(mean seconds per step, loading included; estimated seconds per epoch of the fold) for one variant."""
    _, overrides, options = variant
    sample, batches_per_epoch = epoch_sample(fold, options, steps, seed)
    with tempfile.TemporaryDirectory() as output:
        args = training_args(output, num_train_epochs=1, **{**options, "train_sampling_strategy": "sequential"})
        set_seed(0)
        data_args = DataArguments(dataset=str(path))
        model, collator, _ = build_model_and_collator(ModelArguments(config_overrides=overrides), data_args, sample)
        clock = StepClock()
        trainer = make_trainer(model, collator, args, sample, None)
        trainer.add_callback(clock)
        trainer.train()
    step = statistics.mean(clock.intervals()[1:])
    return step, step * batches_per_epoch


def compare_variants(path: Path, steps: int, rounds: int) -> None:
    fold = fold_one(path)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in VARIANTS}
    for round_index in range(rounds):
        for variant in VARIANTS:
            times[variant[0]].append(epoch_seconds(fold, path, variant, steps, seed=round_index))
            print(f"  round {round_index + 1}/{rounds}: {variant[0]} measured", flush=True)
    epochs = [statistics.mean(epoch for _, epoch in times[name]) for name, _, _ in VARIANTS]
    print(f"\nOne epoch of fold 1 ({fold.num_rows} utterances), {steps} batches per variant and round:")
    print(f"{'variant':<30}{'s/step':>9}{'s/epoch':>10}{'vs previous':>13}{'vs paper head':>15}")
    for index, (name, _, _) in enumerate(VARIANTS):
        step = statistics.mean(step for step, _ in times[name])
        previous = epochs[index] / epochs[index - 1] if index else 1.0
        print(f"{name:<30}{step:>9.3f}{epochs[index]:>10.1f}{previous:>12.2f}x{epochs[index] / epochs[0]:>14.2f}x")


def full_cv(path: Path, epochs: int) -> None:
    _, overrides, options = VARIANTS[-1]
    with tempfile.TemporaryDirectory() as output:
        args = training_args(output, num_train_epochs=epochs, per_device_eval_batch_size=64, **options)
        start = time.perf_counter()
        result = cross_validate(
            ModelArguments(config_overrides=overrides), DataArguments(dataset=str(path)), args, "session"
        )
        seconds = time.perf_counter() - start
    ua = result["summary"]["ua"]
    print(
        f"\n{VARIANTS[-1][0]}: 5-fold leave-one-session-out CV, {epochs} epochs per fold: {seconds / 60:.1f} min "
        f"({seconds / (5 * epochs):.1f} s per epoch incl. evaluation); held-out UA {ua['mean']:.3f} ± {ua['std']:.3f}"
    )


def mean_seconds(function, repeats: int = 20) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def train_step_for(overrides: str, data_args: DataArguments, dataset: Dataset, inputs: dict) -> Callable[[], None]:
    set_seed(0)
    model, _, _ = build_model_and_collator(ModelArguments(config_overrides=overrides), data_args, dataset)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step() -> None:
        optimizer.zero_grad()
        model(**inputs).loss.backward()
        optimizer.step()

    return train_step


def fused_over_separate(width: int, tokens: int = BATCH_SIZE * 120) -> float:
    """Time of one (tokens x d) @ (d x 2d) product over two (tokens x d) @ (d x d) ones, forward and backward."""
    inputs = torch.randn(tokens, width, requires_grad=True)
    weights = [torch.randn(width, width, requires_grad=True) for _ in range(2)]
    separate = mean_seconds(lambda: sum((inputs @ w).sum() for w in weights).backward())
    fused = mean_seconds(lambda: (inputs @ torch.cat(weights, dim=1)).sum().backward())
    return fused / separate


def profile(path: Path) -> None:
    """
    Where a training step goes: the paper head's operators' share of CPU time; the fixed cost of a CPU-recipe step
    (a batch of 2 short samples: per-operation overhead); and whether fusing the per-pair projections would pay.
    """
    data_args = DataArguments(dataset=str(path))
    dataset = load_training_dataset(data_args, training_args(tempfile.gettempdir()))["train"]
    rows = [dataset[i] for i in range(min(BATCH_SIZE, dataset.num_rows))]
    batch = MultimodalCollator(ignore_keys=("session",))(rows)
    tiny = {name: value[:2, :8] if value.dim() > 1 else value[:2] for name, value in batch.items()}
    paper_step = train_step_for(VARIANTS[0][1], data_args, dataset, batch)
    paper_step()  # warm-up
    with torch.profiler.profile() as profiler:
        paper_step()
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print("\nPaper head, one training step: share of CPU time")
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]:
        print(f"  {event.key:<28}{event.self_cpu_time_total / total:>7.1%}")
    overhead = mean_seconds(train_step_for(VARIANTS[-1][1], data_args, dataset, tiny), repeats=10)
    print(f"CPU recipe, a step on 2 samples x 8 steps (fixed per-step cost): {overhead * 1000:.0f} ms")
    for width in (128, 256):
        print(f"fused / separate pair projections, width {width}: x{fused_over_separate(width):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fold of the full CV")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 5,531 utterances (smoke runs)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gia-mic-bench")
    parser.add_argument("--profile", action="store_true", help="also show where a paper-head step spends its time")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path = feature_dataset(args.work, args.scale)
    rows = datasets.load_from_disk(str(path))["train"].num_rows
    print(f"{rows} utterances ({time.perf_counter() - start:.0f} s to write or open the features)")
    if args.profile:
        profile(path)
    compare_variants(path, args.steps, args.rounds)
    print(f"(side-by-side part: {(time.perf_counter() - start) / 60:.1f} min so far)")
    full_cv(path, args.epochs)
    print(f"\nbenchmark total: {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
