"""
Dataset-builder throughput and memory: the IEMOCAP builder on synthetic releases with the real label totals at 1/4,
1/2 and full size (10,039 utterances), the MOSI builder on the real labels in ../shared/data/mosi, and the MOSEI
builder on an MMSA pickle of MOSEI's real shapes (text 50 x 768, audio 500 x 74, vision 375 x 35, float32; 22,856
segments at full size, 8.1 GB) at 1/4 and full size. Then how fast cached features are read back for training,
stored the old way (`List(List(float32))`) and as `gia-mic extract-features` now stores them (`Array2D`).

    python benchmarks/data.py [--scales 0.25 0.5 1.0] [--audio-seconds 0.02] [--feature-rows 553]
                              [--mosei-scales 0.25 1.0] [--work DIR]

Each build runs in its own process so its peak RSS is its own. Prints utterances/s, peak RSS, and the ratio of peak
RSS at full size to 1/4 size (flat memory: close to 1). A pickle is read whole (that is what unpickling does), so for
MOSEI the figure that must stay flat is the peak anonymous memory (heap and arrays; VmHWM also counts the pages of
the Arrow files being written, which the kernel reclaims) beyond the pickle's own arrays. Feature reads: random
batches of 32 IEMOCAP-shaped rows (`benchmarks/training.py`'s), fetched as the training data loader fetches them, from
files already in the page cache, both storages interleaved round by round.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from memory import AnonymousPeak, peak_rss_mib


ROOT = Path(__file__).resolve().parents[1]
MOSI = ROOT.parent / "shared" / "data" / "mosi"


def measure_iemocap(scale: float, audio_seconds: float) -> dict:
    import datasets

    from dataset_scripts import iemocap
    from dataset_scripts.common import BuildReport
    from dataset_scripts.synthetic_iemocap import write_full_size_release

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as work:
        root = write_full_size_release(Path(work) / "IEMOCAP_full_release", audio_seconds, scale, progress=False)
        scanned = sum(1 for _ in iemocap.scan_release(root, BuildReport()))
        start = time.perf_counter()
        dataset = iemocap.build(root, BuildReport(), Path(work) / "cache", label_set="4class")["train"]
        seconds = time.perf_counter() - start
    return {"utterances": scanned, "rows": dataset.num_rows, "seconds": seconds}


def measure_mosi() -> dict:
    import datasets

    from dataset_scripts import mosi

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        built = mosi.main(
            [
                "--root",
                str(MOSI),
                "--label-file",
                "segments.csv",
                "--text-only",
                "--output",
                str(Path(work) / "mosi"),
                "--folds",
                str(MOSI / "cmu_sdk_standard_folds.json"),
            ]
        )
        seconds = time.perf_counter() - start
    rows = sum(split.num_rows for split in built.values())
    return {"utterances": rows, "rows": rows, "seconds": seconds}


MOSEI_SPLITS = {"train": 16326, "valid": 1871, "test": 4659}
MOSEI_SHAPES = {"text": (50, 768), "audio": (500, 74), "vision": (375, 35)}


def write_mosei_pickle(path: Path, scale: float) -> int:
    """An MMSA `unaligned_50.pkl` of MOSEI's shapes and split sizes times `scale`; returns the arrays' bytes."""
    import pickle

    rng = np.random.default_rng(0)
    data, size = {}, 0
    for split, count in MOSEI_SPLITS.items():
        count = max(1, round(count * scale))
        arrays = {m: rng.standard_normal((count, *shape), dtype=np.float32) for m, shape in MOSEI_SHAPES.items()}
        size += sum(a.nbytes for a in arrays.values())
        text_bert = np.zeros((count, 3, 50), dtype=np.float32)
        text_bert[:, 1, :30] = 1
        data[split] = {
            "id": [f"video{i // 7}$_${i % 7}" for i in range(count)],
            "raw_text": ["a sentence"] * count,
            **arrays,
            "text_bert": text_bert,
            "audio_lengths": rng.integers(100, 500, count).tolist(),
            "vision_lengths": rng.integers(75, 375, count).tolist(),
            "regression_labels": rng.uniform(-3, 3, count).astype(np.float32),
        }
    with path.open("wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return size


def measure_mosei(pickle_path: Path) -> dict:
    import warnings

    import datasets

    from dataset_scripts import mosei

    datasets.disable_progress_bars()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(dir=pickle_path.parent) as work, AnonymousPeak() as anonymous:
        release = Path(work) / "release"  # the release folder (the pickle is given by --pickle), beside the output
        release.mkdir()
        start = time.perf_counter()
        built = mosei.main(
            [
                "--source",
                "mmsa-pickle",
                "--pickle",
                str(pickle_path),
                "--allow-pickle",
                "--root",
                str(release),
                "--output",
                str(Path(work) / "mosei"),
            ]
        )
        seconds = time.perf_counter() - start
    rows = sum(split.num_rows for split in built.values())
    return {"utterances": rows, "rows": rows, "seconds": seconds, "anonymous_peak_mib": anonymous.mib}


def feature_read_seconds(rows: int, rounds: int = 3, batches: int = 10) -> dict[str, float]:
    """Median seconds to fetch a random batch of 32 rows, per storage of the feature columns."""
    import datasets
    from datasets import Dataset, Features, List, Value
    from training import EMOTIONS, SIZES, utterances

    from gia_mic.training import feature_array, with_numpy_features

    datasets.disable_progress_bars()
    scale = rows / 5531
    storages = {
        "List(List(float32))": lambda width: List(List(Value("float32"))),
        "Array2D": feature_array,
    }
    with tempfile.TemporaryDirectory() as work:
        splits = {}
        for name, column_type in storages.items():
            features = Features(
                {
                    "session": Value("int32"),
                    "label": datasets.ClassLabel(names=EMOTIONS),
                    **{f"{m}_features": column_type(width) for m, width in SIZES.items()},
                }
            )
            split = Dataset.from_generator(utterances, features=features, cache_dir=work, gen_kwargs={"scale": scale})
            splits[name] = with_numpy_features(split)
            splits[name].__getitems__(list(range(split.num_rows)))  # into the page cache: decoding, not the disk
        generator = np.random.default_rng(0)
        times = {name: [] for name in storages}
        for _ in range(rounds):
            keys = [
                generator.choice(split.num_rows, min(32, split.num_rows), replace=False).tolist()
                for _ in range(batches)
            ]
            for name, split in splits.items():
                for batch in keys:
                    start = time.perf_counter()
                    split.__getitems__(batch)
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def child(kind: str, scale: float, audio_seconds: float, pickle_path: Path | None) -> None:
    if kind == "mosei":
        result = measure_mosei(pickle_path)
    else:
        result = measure_iemocap(scale, audio_seconds) if kind == "iemocap" else measure_mosi()
    result["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result))


def run_child(kind: str, scale: float, audio_seconds: float, pickle_path: Path | None = None) -> dict:
    extra = ["--pickle", str(pickle_path)] if pickle_path else []
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--scales",
            str(scale),
            "--audio-seconds",
            str(audio_seconds),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--audio-seconds", type=float, default=0.02, help="audio per synthetic utterance")
    parser.add_argument("--feature-rows", type=int, default=553, help="rows of the feature-read comparison")
    parser.add_argument("--mosei-scales", type=float, nargs="*", default=[0.25, 1.0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()), help="for the MOSEI pickle")
    parser.add_argument("--child", choices=["iemocap", "mosi", "mosei"], help=argparse.SUPPRESS)
    parser.add_argument("--pickle", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.scales[0], args.audio_seconds, args.pickle)
        return

    print(f"{'builder':<28}{'utterances':>11}{'rows':>7}{'seconds':>9}{'utt/s':>9}{'peak RSS MiB':>14}")
    results = {}
    for scale in args.scales:
        results[scale] = r = run_child("iemocap", scale, args.audio_seconds)
        label = f"IEMOCAP 4class x{scale:g}"
        print(
            f"{label:<28}{r['utterances']:>11}{r['rows']:>7}{r['seconds']:>9.2f}"
            f"{r['utterances'] / r['seconds']:>9.0f}{r['peak_rss_mib']:>14.0f}"
        )
    if MOSI.is_dir():
        r = run_child("mosi", 1.0, args.audio_seconds)
        print(
            f"{'MOSI labels (real)':<28}{r['utterances']:>11}{r['rows']:>7}{r['seconds']:>9.2f}"
            f"{r['utterances'] / r['seconds']:>9.0f}{r['peak_rss_mib']:>14.0f}"
        )
    mosei = {}
    for scale in args.mosei_scales:
        with tempfile.TemporaryDirectory(dir=args.work) as work:
            pickle_path = Path(work) / "unaligned_50.pkl"
            arrays_mib = write_mosei_pickle(pickle_path, scale) / 2**20
            mosei[scale] = r = run_child("mosei", scale, args.audio_seconds, pickle_path)
        r["beyond_pickle_mib"] = r["anonymous_peak_mib"] - arrays_mib
        label = f"MOSEI pickle x{scale:g}"
        print(
            f"{label:<28}{r['utterances']:>11}{r['rows']:>7}{r['seconds']:>9.2f}"
            f"{r['utterances'] / r['seconds']:>9.0f}{r['peak_rss_mib']:>14.0f}"
            f"   (pickle arrays {arrays_mib:,.0f} MiB; anonymous peak beyond them {r['beyond_pickle_mib']:,.0f} MiB)"
        )
    if len(mosei) > 1:
        low, high = min(mosei), max(mosei)
        print(
            f"MOSEI: anonymous peak beyond the pickle x{high:g} / x{low:g} = "
            f"{mosei[high]['beyond_pickle_mib'] / mosei[low]['beyond_pickle_mib']:.2f} for "
            f"{mosei[high]['rows'] / mosei[low]['rows']:.1f}x the segments"
        )
    smallest, largest = min(results), max(results)
    growth = results[largest]["peak_rss_mib"] / results[smallest]["peak_rss_mib"]
    print(
        f"\npeak RSS x{largest:g} / x{smallest:g} = {growth:.2f} for "
        f"{results[largest]['utterances'] / results[smallest]['utterances']:.1f}x the utterances"
    )
    reads = feature_read_seconds(args.feature_rows)
    print(f"\nReading a random batch of 32 IEMOCAP-shaped feature rows ({args.feature_rows} rows stored):")
    for name, seconds in reads.items():
        print(f"  {name:<22}{seconds * 1000:8.1f} ms")
    print(f"  Array2D / List(List(float32)): x{reads['Array2D'] / reads['List(List(float32))']:.2f} time per batch")


if __name__ == "__main__":
    main()
