"""
The `multimodal-emotion-recognition` pipeline on many items, one by one and `batch_size` at a time, side by side in
one run: texts (MELD test utterances) and speech clips (RAVDESS, without transcription).

    python benchmarks/pipeline_batching.py --model .cache/demo/gia-mic-starter [--texts 256] [--clips 32]

Prints the time of each way, the ratio, and the largest difference of a score between the two ways.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def texts(meld: Path, count: int) -> list[dict]:
    with open(meld / "test_sent_emo.csv", newline="", encoding="utf-8") as handle:
        return [{"text": row["Utterance"]} for row in csv.DictReader(handle)][:count]


def clips(ravdess: Path, count: int) -> list[dict]:
    paths = sorted(ravdess.glob("Actor_*/*.flac"))
    chosen = paths[:: max(1, len(paths) // count)][:count]
    return [dict(zip(("audio", "sampling_rate"), sf.read(path, dtype="float32"))) for path in chosen]


def timed(classifier, items: list[dict], batch_size: int | None) -> tuple[float, list]:
    start = time.perf_counter()
    if batch_size is None:
        results = [classifier(item, transcribe=False) for item in items]
    else:
        results = classifier(items, batch_size=batch_size, transcribe=False)
    return time.perf_counter() - start, results


def largest_difference(one: list, other: list) -> float:
    scores = [[{r["label"]: r["score"] for r in result} for result in results] for results in (one, other)]
    return max(abs(a[label] - b[label]) for a, b in zip(*scores) for label in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "demo" / "gia-mic-starter")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    from transformers import pipeline

    classifier = pipeline("multimodal-emotion-recognition", model=str(args.model), trust_remote_code=True)
    print(f"{torch.get_num_threads()} threads, batches of {args.batch_size}")
    print("| items | one by one (s) | batched (s) | one by one / batched | largest score difference |")
    print("|---|---|---|---|---|")
    for name, items in (
        ("texts", texts(args.data / "meld", args.texts)),
        ("speech clips", clips(args.data / "ravdess", args.clips)),
    ):
        classifier(items[:2], batch_size=2, transcribe=False)  # warm-up
        single, one_by_one = timed(classifier, items, None)
        batched, together = timed(classifier, items, args.batch_size)
        difference = largest_difference(one_by_one, together)
        print(f"| {len(items)} {name} | {single:.2f} | {batched:.2f} | x{single / batched:.2f} | {difference:.1e} |")
        assert np.isfinite(difference)


if __name__ == "__main__":
    main()
