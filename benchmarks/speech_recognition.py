"""
Speech recognition in float32 and with Whisper's encoder in bfloat16, side by side in one run: time and words.

    python benchmarks/speech_recognition.py --model .cache/demo/gia-mic-starter [--every 4] [--examples 8]

The model folder's `asr/` Whisper through the pipeline's `SpeechRecognizer` (batches of `--batch-size`, 16) on every
`--every`-th RAVDESS clip of `../shared/data/ravdess` plus the demo's example clip (whole, 9.4 s, and its first 5 s,
`--examples` of each). Prints the time of each setting, the speed-up, how many transcripts are identical, and the
ones that differ. bfloat16 pays only on CPUs that compute it natively (`native_bfloat16()`: AMX or AVX512-BF16);
elsewhere it is emulated.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clips(ravdess: Path, every: int, examples: int) -> list:
    from gia_mic.hub import write_examples
    from modeling_gia_mic.processing_gia_mic import resample

    def read(path: Path):
        waveform, rate = sf.read(path, dtype="float32")
        return resample(waveform if waveform.ndim == 1 else waveform.mean(1), rate, 16000)

    with tempfile.TemporaryDirectory() as work:
        speech = read(next(p for p in write_examples(Path(work)) if p.suffix == ".wav"))
    ravdess_clips = [read(path) for path in sorted(ravdess.glob("Actor_*/*.flac"))[::every]]
    return ravdess_clips + [speech] * examples + [speech[: 16000 * 5]] * examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "demo" / "gia-mic-starter")
    parser.add_argument("--ravdess", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    from modeling_gia_mic.pipeline_gia_mic import SpeechRecognizer, native_bfloat16

    recognizer = SpeechRecognizer.from_pretrained(str(args.model), subfolder="asr")
    recognizer.batch_size = args.batch_size
    waveforms = clips(args.ravdess, args.every, args.examples)
    print(
        f"{len(waveforms)} clips, batches of {args.batch_size}, {torch.get_num_threads()} threads, "
        f"native bfloat16: {native_bfloat16()}"
    )
    words, seconds = {}, {}
    for bfloat16 in (False, True):
        recognizer.bfloat16 = bfloat16
        start = time.perf_counter()
        words[bfloat16] = recognizer(waveforms)
        seconds[bfloat16] = time.perf_counter() - start
        print(f"{'bfloat16 encoder' if bfloat16 else 'float32':<18}{seconds[bfloat16]:8.1f} s")
    same = sum(a == b for a, b in zip(words[False], words[True]))
    print(f"speed-up x{seconds[False] / seconds[True]:.2f}; identical transcripts {same} of {len(waveforms)}")
    for a, b in zip(words[False], words[True]):
        if a != b:
            print(f"    {a!r} -> {b!r}")


if __name__ == "__main__":
    main()
