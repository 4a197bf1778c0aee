"""
Resampler memory and time against the clip's length, for rates that share few factors with 16 kHz.

    python benchmarks/resample.py [--rates 4001 8001 44101 192000 48000] [--seconds 0.05 0.2 1 10 60]

Each measurement runs in a fresh process (peak resident memory growth from VmHWM, wall time of one call). "before" is
the polyphase implementation this package used until it was replaced (a filter bank of target/gcd x (2 width +
orig/gcd) taps: its size follows how few factors the rates share, not the clip's length); it is run only for clips up
to `--before-max-seconds`, since at 44,101 Hz 0.2 s already takes gigabytes.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

BEFORE = """
def resample(waveform, orig_sr, target_sr, lowpass_filter_width=16, rolloff=0.945):
    gcd = math.gcd(orig_sr, target_sr)
    orig, new = orig_sr // gcd, target_sr // gcd
    cutoff = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    offsets = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    times = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + offsets) * cutoff
    times = times.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(times * math.pi / lowpass_filter_width / 2) ** 2
    times = times * math.pi
    sinc = torch.where(times == 0, torch.ones_like(times), torch.sin(times) / times)
    kernels = sinc * window * (cutoff / orig)
    signal = torch.nn.functional.pad(torch.from_numpy(waveform).double()[None, None], (width, width + orig))
    resampled = torch.nn.functional.conv1d(signal, kernels, stride=orig).transpose(1, 2).reshape(-1)
    return resampled[: math.ceil(new * waveform.size / orig)].float().numpy()
"""
AFTER = "from modeling_gia_mic.processing_gia_mic import resample\n"


def measure(implementation: str, rate: int, seconds: float) -> dict[str, float]:
    """Peak RSS growth (MiB) and seconds of one resample call to 16 kHz, in a fresh process."""
    script = f"""
import json, math, sys, time
import numpy as np, torch
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
import memory
{implementation}
waveform = np.random.default_rng(0).standard_normal(int({rate} * {seconds})).astype(np.float32)
resample(np.zeros(100, np.float32), 48000, 16000)  # warm up torch's kernels
base = memory.rss_mib()
start = time.perf_counter()
out = resample(waveform, {rate}, 16000)
elapsed = time.perf_counter() - start
assert out.size == math.ceil(16000 * waveform.size / {rate})
print(json.dumps({{"peak_mib": memory.peak_rss_mib() - base, "seconds": elapsed}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:  # killed for memory (no message), or failed
        return {"failed": (result.stderr.strip().splitlines() or [f"killed (exit {result.returncode})"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def cells(result: dict | None) -> list[str]:
    if result is None:
        return ["-", "-"]
    if "failed" in result:
        return [result["failed"], "-"]
    return [f"{result['peak_mib']:.0f}", f"{result['seconds']:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=int, nargs="+", default=[4001, 8001, 44101, 192000, 48000])
    parser.add_argument("--seconds", type=float, nargs="+", default=[0.05, 0.2, 1.0, 10.0, 60.0])
    parser.add_argument("--before-max-seconds", type=float, default=0.2)
    args = parser.parse_args()
    print("| rate (Hz) | clip (s) | before: peak MiB | before: s | after: peak MiB | after: s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rate in args.rates:
        for seconds in args.seconds:
            before = measure(BEFORE, rate, seconds) if seconds <= args.before_max_seconds else None
            row = [str(rate), f"{seconds:g}", *cells(before), *cells(measure(AFTER, rate, seconds))]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
