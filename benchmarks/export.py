"""
Inference time of an exported fusion head: onnxruntime vs PyTorch (eager, float32), side by side in one run.

    python benchmarks/export.py [--rounds 20] [--batch-sizes 1 8]

The head is the default GIA-MIC (width 256, 2 GIA layers) in feature mode on IEMOCAP-like cached features: 24 text
tokens x 768, 4 s of speech x 768 at 50 steps/s (200 steps), 8 frames x 768. `gia-mic export --format onnx` makes the
file; both run on the CPU with the same threads. Medians of interleaved rounds.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gia_mic.export import export_model  # noqa: E402
from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition  # noqa: E402


LENGTHS = {"text": 24, "audio": 200, "vision": 8}


def inputs(batch_size: int) -> dict[str, torch.Tensor]:
    features = {}
    for modality, length in LENGTHS.items():
        features[f"{modality}_features"] = torch.randn(batch_size, length, 768)
        features[f"{modality}_feature_mask"] = torch.ones(batch_size, length, dtype=torch.long)
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    import onnxruntime

    torch.manual_seed(0)
    config = GiaMicConfig(**{f"{m}_feature_size": 768 for m in LENGTHS}, num_labels=4)
    model = GiaMicForEmotionRecognition(config).eval()
    with tempfile.TemporaryDirectory() as work:
        model.save_pretrained(Path(work) / "model")
        start = time.perf_counter()
        path = export_model(Path(work) / "model", Path(work) / "onnx", "onnx")
        print(f"export: {time.perf_counter() - start:.1f} s")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options)
    for batch_size in args.batch_sizes:
        batch = inputs(batch_size)
        feeds = {name: value.numpy() for name, value in batch.items()}
        torch_times, onnx_times = [], []
        with torch.no_grad():
            model(**batch), session.run(["logits"], feeds)  # warm-up
            for _ in range(args.rounds):
                start = time.perf_counter()
                expected = model(**batch).logits
                torch_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                (logits,) = session.run(["logits"], feeds)
                onnx_times.append(time.perf_counter() - start)
        difference = float(abs(logits - expected.numpy()).max())
        pytorch, onnx = statistics.median(torch_times), statistics.median(onnx_times)
        print(
            f"batch {batch_size}: PyTorch {pytorch * 1000:.1f} ms, onnxruntime {onnx * 1000:.1f} ms, "
            f"onnxruntime / PyTorch x{onnx / pytorch:.2f}, max |logit difference| {difference:.1e}"
        )


if __name__ == "__main__":
    main()
