"""
Who speaks when: diarization error rate (missed speech + false alarm + speaker confusion, over the reference's speech,
with a 0.25-s collar around each reference turn's edges) of `modeling_gia_mic.speakers_gia_mic.diarize` on

- conversations assembled from RAVDESS actors the starter never trained on (21-24: 21 and 23 male, 22 and 24 female):
  2, 3 and 4 speakers, both sexes and one, 10 turns of one sentence each, pauses of 0.2-1 s between turns;
- pyannote's real two-speaker sample (`pyannote/audio/sample/sample.wav` with its `sample.rttm`).

The speech spans are the utterances the recording reader cuts (Silero VAD, then `SegmentationOptions`), as in
`gia-mic analyze --speakers`.

    python benchmarks/diarization.py [--conversations 5] [--model .cache/demo/gia-mic-starter]

With `--model`, `gia-mic analyze` on a minute of conversation with and without `--speakers`, side by side: the cost
of telling the speakers apart within a whole analysis.
"""

import argparse
import importlib.util
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import recordings  # noqa: E402  (benchmarks/: RAVDESS speech trimmed of its silence)

from modeling_gia_mic.processing_gia_mic import resample  # noqa: E402
from modeling_gia_mic.recording_gia_mic import SegmentationOptions, VoiceActivityDetector, speech_segments  # noqa: E402
from modeling_gia_mic.speakers_gia_mic import DiarizationOptions, SpeakerEncoder, diarize  # noqa: E402


RATE = 16000
Turn = tuple[float, float, object]  # start, end, speaker
SETTINGS = {  # name -> RAVDESS actors taking turns
    "2 speakers, male and female": [21, 22],
    "2 speakers, both male": [21, 23],
    "2 speakers, both female": [22, 24],
    "3 speakers": [21, 22, 23],
    "4 speakers": [21, 22, 23, 24],
    "1 speaker": [24],
}


def diarization_error_rate(reference: list[Turn], hypothesis: list[Turn], collar: float = 0.25, step=0.01) -> float:
    """
    (missed + false alarm + confusion) / reference speech, on a 10-ms grid, the `collar` around each reference edge
    left out; hypothesis speakers mapped one-to-one onto reference speakers to agree the most (as pyannote.metrics).
    """
    end = max([e for _, e, _ in reference + hypothesis], default=0.0)
    times = np.arange(0.0, end, step) + step / 2
    scored = np.ones(times.size, bool)
    for start, stop, _ in reference:
        for edge in (start, stop):
            scored &= np.abs(times - edge) >= collar
    ref_names = sorted({s for *_, s in reference}, key=str)
    hyp_names = sorted({s for *_, s in hypothesis}, key=str)
    ref = np.zeros((len(ref_names), times.size), bool)
    hyp = np.zeros((len(hyp_names), times.size), bool)
    for start, stop, speaker in reference:
        ref[ref_names.index(speaker)] |= (times >= start) & (times < stop)
    for start, stop, speaker in hypothesis:
        hyp[hyp_names.index(speaker)] |= (times >= start) & (times < stop)
    ref, hyp = ref[:, scored], hyp[:, scored]
    speech = ref.sum()
    if speech == 0:
        return 0.0
    ref_count, hyp_count = ref.sum(0), hyp.sum(0)
    overlap = (ref[:, None] & hyp[None]).sum(2)  # (reference, hypothesis) frames in common
    best = max(
        (
            sum(overlap[r, h] for r, h in zip(rows, columns))
            for rows, columns in mappings(len(ref_names), len(hyp_names))
        ),
        default=0,
    )
    missed = np.maximum(ref_count - hyp_count, 0).sum()
    false_alarm = np.maximum(hyp_count - ref_count, 0).sum()
    confusion = np.minimum(ref_count, hyp_count).sum() - best
    return float((missed + false_alarm + confusion) / speech)


def mappings(references: int, hypotheses: int):
    """Every one-to-one pairing of reference and hypothesis speakers (as many pairs as the smaller side)."""
    pairs = min(references, hypotheses)
    for rows in itertools.permutations(range(references), pairs):
        for columns in itertools.combinations(range(hypotheses), pairs):
            yield rows, columns


def conversation(actors: list[int], turns: int, generator: np.random.Generator) -> tuple[np.ndarray, list[Turn]]:
    """`turns` RAVDESS sentences, the actors in turn (each speaks first once, then at random but never twice in a
    row), 0.2-1 s of silence between them and 0.5 s around; with the reference turns."""
    track, reference, position = [np.zeros(RATE // 2, np.float32)], [], 0.5
    speaker = None
    for index in range(turns):
        others = [a for a in actors if a != speaker] or actors
        speaker = actors[index] if index < len(actors) else others[generator.integers(len(others))]
        files = sorted((recordings.DATA / "ravdess" / f"Actor_{speaker:02d}").glob("*.flac"))
        clip = recordings.trimmed_speech(files[generator.integers(len(files))])
        reference.append((position, position + clip.size / RATE, speaker))
        pause = np.zeros(round(generator.uniform(0.2, 1.0) * RATE), np.float32)
        track += [clip, pause]
        position += (clip.size + pause.size) / RATE
    track.append(np.zeros(RATE // 2, np.float32))
    return np.concatenate(track), reference


def speech_spans(audio: np.ndarray, detector: VoiceActivityDetector) -> list[tuple[float, float]]:
    """The utterances `gia-mic analyze` cuts from the detector's speech (the reader's own `SegmentationOptions`):
    diarization then cuts them where the speaker changes, as it does in an analysis."""
    return speech_segments(detector.probabilities([audio]), audio.size / RATE, SegmentationOptions())


def pyannote_sample() -> tuple[np.ndarray, list[Turn]] | None:
    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "sample"
    audio, rate = sf.read(folder / "sample.wav", dtype="float32", always_2d=True)
    reference = []
    for line in (folder / "sample.rttm").read_text().splitlines():
        fields = line.split()
        reference.append((float(fields[3]), float(fields[3]) + float(fields[4]), fields[7]))
    return resample(audio.mean(axis=1), rate, RATE), reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--conversations", type=int, default=5, help="per setting")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--speakers", type=Path, help="a converted speaker encoder folder (default: convert one)")
    parser.add_argument("--model", type=Path, help="a model folder: also time gia-mic analyze with and without it")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    print(f"CPU: {cpu} ({os.cpu_count()} cores), Python {platform.python_version()}")
    if args.speakers is None:
        import tempfile

        from gia_mic.resemblyzer_ge2e import convert_resemblyzer

        args.speakers = convert_resemblyzer(Path(tempfile.mkdtemp(prefix="gia-mic-speakers-")))
    encoder, detector = SpeakerEncoder.from_pretrained(args.speakers), VoiceActivityDetector.from_pretrained()
    options = DiarizationOptions()
    columns = "| recordings | DER mean | DER worst | speakers counted right | turns found / true | s per min |"
    print(f"\n{options}\n\n{columns}")
    print("|---|---:|---:|---:|---:|---:|")
    generator = np.random.default_rng(0)
    everything = []
    for name, actors in SETTINGS.items():
        errors, counted, found, true, seconds, minutes = [], 0, 0, 0, 0.0, 0.0
        for _ in range(args.conversations):
            audio, reference = conversation(actors, args.turns, generator)
            started = time.perf_counter()
            turns = diarize(audio, speech_spans(audio, detector), encoder, options)
            seconds += time.perf_counter() - started
            minutes += audio.size / RATE / 60
            errors.append(diarization_error_rate(reference, turns))
            counted += len({s for *_, s in turns}) == len(actors)
            found, true = found + len(turns), true + len(reference)
        everything += errors
        print(
            f"| {name} (RAVDESS {', '.join(map(str, actors))}) | {np.mean(errors):.3f} | {max(errors):.3f} | "
            f"{counted}/{args.conversations} | {found}/{true} | {seconds / minutes:.1f} |"
        )
    print(f"| all assembled conversations | {np.mean(everything):.3f} | {max(everything):.3f} | | | |")
    sample = pyannote_sample()
    if sample is not None:
        audio, reference = sample
        started = time.perf_counter()
        turns = diarize(audio, speech_spans(audio, detector), encoder, options)
        seconds = time.perf_counter() - started
        print(
            f"| pyannote's sample.wav (2 speakers, {len(reference)} turns) | "
            f"{diarization_error_rate(reference, turns):.3f} | | {len({s for *_, s in turns})} found | "
            f"{len(turns)}/{len(reference)} | {seconds / (audio.size / RATE / 60):.1f} |"
        )
    if args.model is not None:
        analysis_cost(args.model, detector, generator)


def analysis_cost(model: Path, detector, generator: np.random.Generator) -> None:
    """`gia-mic analyze` of a one-minute conversation of two actors, without and with `--speakers`, one after the
    other (twice each, the faster kept)."""
    import subprocess
    import tempfile

    audio = np.concatenate([conversation([21, 22], 10, generator)[0] for _ in range(2)])
    gia_mic = str(Path(sys.executable).with_name("gia-mic"))
    with tempfile.TemporaryDirectory() as work:
        sf.write(Path(work) / "talk.wav", audio, RATE)
        base = [gia_mic, "analyze", str(Path(work) / "talk.wav"), "--model", str(model), "--overwrite", "--output"]
        times = {}
        for label, extra in (("without", []), ("with --speakers", ["--speakers"])) * 2:
            started = time.perf_counter()
            subprocess.run([*base, str(Path(work) / "out"), *extra], check=True, capture_output=True)
            times[label] = min(times.get(label, np.inf), time.perf_counter() - started)
    minutes = audio.size / RATE / 60
    print(
        f"\n`gia-mic analyze` of {minutes:.1f} min of two actors' conversation (transcribing, process start included):"
    )
    for label, seconds in times.items():
        print(f"- {label}: {seconds:.1f} s")
    print(f"- with / without: x{times['with --speakers'] / times['without']:.2f}")


if __name__ == "__main__":
    main()
