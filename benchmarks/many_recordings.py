"""
Two processes vs one on the same machine: `gia-mic analyze` on a folder of real recordings, one process with every
core's thread against `accelerate launch --num_processes 2` with one thread each (the cores shared, not
oversubscribed), side by side in one run; then `gia-mic extract-features` on RAVDESS the same two ways. Prints each
run's wall time and throughput (minutes of audio, or rows, per minute) and the ratio, and checks that the two runs'
answers agree.

    python benchmarks/many_recordings.py --model .cache/demo/gia-mic-starter [--recordings 20] [--no-transcribe]

The recordings are real speech, each of one RAVDESS actor (actors 1, 2, ...: four of their clips in different
emotions, 1.5 s of silence between them), every other one a video with a real FER-2013 face on screen around each
clip.
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import recordings  # noqa: E402  (benchmarks/: real recordings of known content)


GIA_MIC = str(Path(sys.executable).with_name("gia-mic"))
EMOTIONS = {"03": "happy", "04": "sad", "05": "angry", "08": "surprise"}  # RAVDESS code -> the face shown


def build_recordings(folder: Path, count: int) -> float:
    """`count` recordings, one per actor, into `folder`; returns their total seconds of audio."""
    folder.mkdir(parents=True)
    total = 0.0
    for actor in range(1, count + 1):
        clips = [
            sorted((recordings.DATA / "ravdess" / f"Actor_{actor:02d}").glob(f"03-01-{code}-*.flac"))[actor % 4]
            for code in EMOTIONS
        ]
        track, spans = recordings.place([recordings.trimmed_speech(clip) for clip in clips], gap_s=1.5)
        total += track.size / recordings.RATE
        if actor % 2:
            recordings.write_recording(folder / f"actor{actor:02d}.wav", track)
            continue
        faces = [recordings.fer_face(emotion, index=actor) for emotion in EMOTIONS.values()]
        face_spans = [(start - 0.75, end + 0.75) for start, end in spans]
        recordings.write_recording(folder / f"actor{actor:02d}.mkv", track, faces, face_spans)
    return total


def run(command: list[str], processes: int) -> float:
    """Wall seconds of `command` in one process with 2 threads, or under `accelerate launch` with 1 thread each."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(max(1, os.cpu_count() // processes))}
    if processes > 1:
        env["ACCELERATE_USE_CPU"] = "1"
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes"]
        options = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command = [*launcher, str(processes), *options, "--main_process_port", "29561", *command]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-3000:]}")
    return time.perf_counter() - start


def labels_of(output: Path) -> dict[str, list[str]]:
    with (output / "index.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["status"] == "done" for row in rows), rows
    found = {}
    for row in rows:
        name = Path(row["path"]).stem
        found[name] = [s["label"] for s in json.loads((output / name / "timeline.json").read_text())["segments"]]
    return found


def features_equal(one: Path, other: Path) -> bool:
    first, second = datasets.load_from_disk(str(one))["train"], datasets.load_from_disk(str(other))["train"]
    if first["id"] != second["id"]:
        return False
    pairs = zip(first["audio_features"], second["audio_features"])
    return all(np.allclose(np.array(a), np.array(b), atol=1e-5, rtol=0) for a, b in pairs)


def ravdess_dataset(folder: Path, actors: int) -> int:
    """RAVDESS clips of the first `actors` actors as a raw dataset (one `train` split); returns its rows."""
    clips = sorted(p for a in range(1, actors + 1) for p in (recordings.DATA / "ravdess" / f"Actor_{a:02d}").glob("*"))
    split = datasets.Dataset.from_dict(
        {"id": [c.stem for c in clips], "audio": [str(c) for c in clips], "label": [0] * len(clips)}
    ).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"train": split}).save_to_disk(str(folder))
    return len(clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "demo" / "gia-mic-starter")
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--no-transcribe", action="store_true", help="leave the words out (speech and faces only)")
    parser.add_argument("--feature-actors", type=int, default=12, help="RAVDESS actors encoded by extract-features")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    print(f"CPU: {cpu} ({os.cpu_count()} cores), Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="gia-mic-many-") as work:
        work = Path(work)
        audio = build_recordings(work / "calls", args.recordings)
        print(f"{args.recordings} recordings, {audio / 60:.1f} min of audio")
        analyze = [GIA_MIC, "analyze", str(work / "calls"), "--model", str(args.model)]
        analyze += ["--no-transcribe"] if args.no_transcribe else []
        print("\n| run | wall s | throughput | ratio |\n|---|---:|---:|---:|")
        one = run([*analyze, "--output", str(work / "one")], 1)
        two = run([*analyze, "--output", str(work / "two")], 2)
        print(f"| analyze, 1 process x {os.cpu_count()} threads | {one:.0f} | {audio / one:.2f}x real time | 1.00 |")
        print(f"| analyze, 2 processes x 1 thread | {two:.0f} | {audio / two:.2f}x real time | {one / two:.2f} |")
        same = labels_of(work / "one") == labels_of(work / "two")
        rows = ravdess_dataset(work / "ravdess", args.feature_actors)
        encoder = ["--audio_encoder", str(args.model / "asr")] if (args.model / "asr").is_dir() else []
        extract = [GIA_MIC, "extract-features", "--dataset", str(work / "ravdess"), *encoder]
        first = run([*extract, "--output", str(work / "f1")], 1)
        second = run([*extract, "--output", str(work / "f2")], 2)
        print(f"| extract-features, 1 process | {first:.0f} | {rows / first * 60:.0f} rows/min | 1.00 |")
        equal = features_equal(work / "f1", work / "f2")
        ratio = first / second
        print(f"| extract-features, 2 processes | {second:.0f} | {rows / second * 60:.0f} rows/min | {ratio:.2f} |")
        print(f"\nThe two analyze runs give the same labels: {same}")
        print(f"The two extract-features runs give the same features (within 1e-5): {equal}")


if __name__ == "__main__":
    main()
