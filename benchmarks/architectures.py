"""
GIA-MIC, MCIHN and MIAR side by side: the three fusion heads on identical cached features, several seeds each.

    python benchmarks/architectures.py [--seeds 0 1 2] [--parts mosi ravdess paired speed]

- mosi: MOSI text (MiniLM-L6 features, regression, standard folds): MAE, r, Acc-2 (non0), Acc-7;
- ravdess: RAVDESS speech (Whisper tiny.en features, actors 21-24 held out): accuracy, UA;
- paired: RAVDESS speech + MELD text + FER-2013 faces paired by label (the starter model's task, three modalities):
  accuracy on paired test triples and on each corpus's test split alone;
- speed: MOSI-shaped features (text 50 x 768, audio 375 x 5, vision 500 x 20) at batch 32, interleaved rounds:
  training step, inference throughput, parameters and peak memory, beside MulT from `mmsa` (needs `.[bench]`).

Every head has the same width (256, 4 heads, feed-forward 512) and each architecture's own defaults otherwise; the
datasets and features are built once by the package's own commands (cached under --work and --starter-work, shared
with benchmarks/real_data.py and the demo's starter build), and a finished MOSI / RAVDESS run is reused (delete
--work/architectures to retrain). Results go to --work/architectures.json.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import real_data


ARCHITECTURES = ("gia_mic", "mcihn", "miar")
WIDTH = "hidden_size=256,num_attention_heads=4,intermediate_size=512"
METRICS = {
    "mosi": (("mae", "MAE"), ("corr", "r"), ("acc2_non0", "Acc-2"), ("acc7", "Acc-7")),
    "ravdess": (("wa", "accuracy"), ("ua", "UA")),
}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def corpus_runs(task: str, work: Path, seeds: list[int]) -> dict[str, list[dict]]:
    """Each architecture's test metrics on one real_data task, per seed (a finished run under --work is reused)."""
    features, _ = real_data.task_features(task, work, 1.0)
    runs = {}
    for architecture in ARCHITECTURES:
        runs[architecture] = []
        for seed in seeds:
            output = work / "architectures" / f"{task}-{architecture}-{seed}"
            finished = output / "metrics.json"
            if finished.is_file():
                runs[architecture].append(json.loads(finished.read_text())["test"])
            else:
                runs[architecture].append(real_data.train_head(task, features, output, architecture, seed, WIDTH))
    return runs


def paired_runs(data: Path, work: Path, seeds: list[int]) -> dict[str, list[dict]]:
    """Each architecture trained as the starter model is, per seed: paired and per-modality test accuracy."""
    from transformers import set_seed

    from gia_mic.starter import EMOTIONS, HEAD, held_out_scores, paired_parts, train_paired
    from gia_mic.training import feature_sizes
    from modeling_gia_mic import ARCHITECTURES as HEADS

    train_parts, _, test_parts, _ = paired_parts(data, work)
    sizes = {key: value for m, (split, _) in train_parts.items() for key, value in feature_sizes(split, [m]).items()}
    shared = {key: value for key, value in HEAD.items() if key != "num_gia_layers"}
    runs = {}
    for architecture in ARCHITECTURES:
        runs[architecture] = []
        for seed in seeds:
            set_seed(seed)
            own = {"num_gia_layers": HEAD["num_gia_layers"]} if architecture == "gia_mic" else {}
            config = HEADS[architecture].config_class(**sizes, **shared, **own, num_labels=len(EMOTIONS))
            trainer = train_paired(HEADS[architecture](config), train_parts, work, seed=seed)
            scores = held_out_scores(trainer, test_parts, seed)
            runs[architecture].append({name: score["accuracy"] for name, score in scores.items()})
    return runs


def speed(work: Path, batch_size: int, rounds: int) -> dict:
    import peers

    names = (*ARCHITECTURES, "mult")
    results = peers.compare(names, work, batch_size, rounds)
    for name, result in zip(names, results.values()):
        result["peak_mib"] = peers.peak_memory(name, work, batch_size)
    return results


def print_table(title: str, runs: dict[str, list[dict]], metrics: tuple[tuple[str, str], ...]) -> None:
    print(f"\n{title}")
    print(f"{'architecture':<14}" + "".join(f"{label:>18}" for _, label in metrics))
    for architecture, results in runs.items():
        cells = "".join(f"{mean_std([r[key] for r in results]):>18}" for key, _ in metrics)
        print(f"{architecture:<14}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--work", type=Path, default=real_data.ROOT / ".cache" / "real_data")
    parser.add_argument("--starter-work", type=Path, default=real_data.ROOT / ".cache" / "demo")
    parser.add_argument("--data", type=Path, default=real_data.DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parts", nargs="+", choices=["mosi", "ravdess", "paired", "speed"], default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    parts = args.parts or ["mosi", "ravdess", "paired", "speed"]
    started, results = time.perf_counter(), {}
    for task in ("mosi", "ravdess"):
        if task in parts:
            results[task] = corpus_runs(task, args.work, args.seeds)
    if "paired" in parts:
        results["paired"] = paired_runs(args.data, args.starter_work, args.seeds)
    if "speed" in parts:
        results["speed"] = speed(Path(tempfile.gettempdir()) / "gia-mic-bench", args.batch_size, args.rounds)

    print(f"\n=== three architectures, seeds {args.seeds} (mean ± std) ===")
    for task in ("mosi", "ravdess"):
        if task in results:
            print_table(f"{task} test split", results[task], METRICS[task])
    if "paired" in results:
        names = tuple((name, name) for name in next(iter(results["paired"].values()))[0])
        print_table(
            "paired RAVDESS + MELD + FER-2013 (accuracy; each corpus alone, then triples)", results["paired"], names
        )
    if "speed" in results:
        print(f"\nspeed, batch {args.batch_size}, MOSI shapes, {args.rounds} interleaved rounds (medians)")
        print(f"{'model':<12}{'params':>12}{'train step s':>14}{'infer samples/s':>17}{'peak MiB':>10}")
        reference = next(iter(results["speed"].values()))
        for name, row in results["speed"].items():
            print(
                f"{name:<12}{row['parameters']:>12,}{row['train_step_s']:>14.4f}{row['throughput']:>17.1f}"
                f"{row['peak_mib']:>10.0f}   train x{row['train_step_s'] / reference['train_step_s']:.2f} of GIA-MIC"
            )
    print(f"\nbenchmark total: {(time.perf_counter() - started) / 60:.1f} min")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "architectures.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
