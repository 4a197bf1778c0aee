"""
Inference time of exported models: onnxruntime vs PyTorch (eager, float32), side by side in one run.

    python benchmarks/export.py [--rounds 20] [--batch-sizes 1 8] [--starter .cache/demo/gia-mic-starter]

1. The fusion head: the default GIA-MIC (width 256, 2 GIA layers) in feature mode on IEMOCAP-like cached features:
   24 text tokens x 768, 4 s of speech x 768 at 50 steps/s (200 steps), 8 frames x 768.
2. With `--starter`: the whole starter model (MiniLM, Whisper tiny.en and mini-Xception inside), exported with the
   default fixed lengths (64 tokens, 30 s, 8 frames) and given a 12-token sentence, 4 s of speech and 8 face frames,
   padded to those lengths. PyTorch runs both on the same padded inputs and on the real lengths (what eager mode
   gets from the processor; its Whisper runs over the clip's real length).

`gia-mic export --format onnx` makes the files; both run on the CPU with the same threads. Medians of interleaved
rounds.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import AutoModelForAudioClassification  # noqa: E402

from gia_mic.export import export_model, pad_to_graph  # noqa: E402
from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition  # noqa: E402


LENGTHS = {"text": 24, "audio": 200, "vision": 8}


def inputs(batch_size: int) -> dict[str, torch.Tensor]:
    features = {}
    for modality, length in LENGTHS.items():
        features[f"{modality}_features"] = torch.randn(batch_size, length, 768)
        features[f"{modality}_feature_mask"] = torch.ones(batch_size, length, dtype=torch.long)
    return features


def starter_inputs(model, batch_size: int) -> dict[str, torch.Tensor]:
    """A 12-token sentence, 4 s of speech (400 mel frames) and 8 frames per sample, at their real lengths."""
    text, audio, vision = (model.config.encoder_config(m) for m in ("text", "audio", "vision"))
    ids = torch.randint(1000, text.vocab_size, (batch_size, 12))
    side = vision.image_size
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "input_features": torch.randn(batch_size, audio.num_mel_bins, 400),
        "audio_attention_mask": torch.ones(batch_size, 400, dtype=torch.long),
        "pixel_values": torch.randn(batch_size, 8, vision.num_channels, side, side),
        "frame_mask": torch.ones(batch_size, 8, dtype=torch.long),
    }


def median_ms(run, rounds: int) -> list[float]:
    """Median time of each of `run`'s callables over interleaved rounds (after one warm-up each)."""
    for call in run:
        call()
    times = [[] for _ in run]
    for _ in range(rounds):
        for index, call in enumerate(run):
            start = time.perf_counter()
            call()
            times[index].append(time.perf_counter() - start)
    return [statistics.median(t) * 1000 for t in times]


def session_for(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return onnxruntime.InferenceSession(str(path), options)


def head(rounds: int, batch_sizes: list[int]) -> None:
    torch.manual_seed(0)
    config = GiaMicConfig(**{f"{m}_feature_size": 768 for m in LENGTHS}, num_labels=4)
    model = GiaMicForEmotionRecognition(config).eval()
    with tempfile.TemporaryDirectory() as work:
        model.save_pretrained(Path(work) / "model")
        start = time.perf_counter()
        session = session_for(export_model(Path(work) / "model", Path(work) / "onnx", "onnx"))
        print(f"fusion head: export {time.perf_counter() - start:.1f} s")
    for batch_size in batch_sizes:
        batch = inputs(batch_size)
        feeds = {name: value.numpy() for name, value in batch.items()}
        with torch.no_grad():
            pytorch, onnx = median_ms([partial(model, **batch), partial(session.run, ["logits"], feeds)], rounds)
            difference = float(abs(session.run(["logits"], feeds)[0] - model(**batch).logits.numpy()).max())
        print(
            f"batch {batch_size}: PyTorch {pytorch:.1f} ms, onnxruntime {onnx:.1f} ms, "
            f"onnxruntime / PyTorch x{onnx / pytorch:.2f}, max |logit difference| {difference:.1e}"
        )


def starter(folder: Path, rounds: int, batch_sizes: list[int]) -> None:
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        path = export_model(folder, Path(work) / "onnx", "onnx")
        shapes = json.loads((path.parent / "inputs.json").read_text())
        session = session_for(path)
        size = sum(file.stat().st_size for file in path.parent.iterdir()) / 2**20  # the graph and its weights
        print(f"starter model: export {time.perf_counter() - start:.1f} s, {size:.0f} MiB")
    for batch_size in batch_sizes:
        real = starter_inputs(model, batch_size)
        feeds = pad_to_graph({k: v.numpy() for k, v in real.items()}, shapes)
        padded = {k: torch.from_numpy(v) for k, v in feeds.items()}
        with torch.no_grad():
            eager_real, eager_padded, onnx = median_ms(
                [partial(model, **real), partial(model, **padded), partial(session.run, ["logits"], feeds)], rounds
            )
            difference = float(abs(session.run(["logits"], feeds)[0] - model(**real).logits.numpy()).max())
        print(
            f"batch {batch_size}: PyTorch {eager_real:.0f} ms (real lengths) / {eager_padded:.0f} ms (padded), "
            f"onnxruntime {onnx:.0f} ms (padded), onnxruntime / PyTorch x{onnx / eager_real:.2f} / "
            f"x{onnx / eager_padded:.2f}, max |logit difference| {difference:.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--starter", type=Path, help="also the whole starter model (a folder with its encoders)")
    args = parser.parse_args()
    head(args.rounds, args.batch_sizes)
    if args.starter:
        starter(args.starter, args.rounds, args.batch_sizes)


if __name__ == "__main__":
    main()
