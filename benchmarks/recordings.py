"""
Recordings of known content for the recording-analysis tests and the memory benchmark: real speech clips (RAVDESS)
placed one after another with silence between them, each with a real face (FER-2013) on screen around it, written
with PyAV as audio-only or video files.

    python benchmarks/recordings.py [--minutes 1 10 30] [--gaps 1.5 120] [--sizes 160x120 1920x1080] [--speakers]
    # peak memory and time of `gia-mic analyze`, one run per combination
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image

from modeling_gia_mic.processing_gia_mic import resample


RATE = 16000
DATA = Path(os.environ.get("GIA_MIC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@dataclass
class Placed:
    """A clip as placed in the recording: its true speech span (seconds) and the face shown around it."""

    start: float
    end: float
    emotion: str
    face: np.ndarray


def trimmed_speech(path: Path, threshold: float = 0.05, frame_s: float = 0.02) -> np.ndarray:
    """A clip at 16 kHz without its leading and trailing silence: from the first to the last 20-ms frame whose RMS
    reaches `threshold` of the loudest frame's (RAVDESS clips are studio recordings with about a second of silence)."""
    waveform, rate = sf.read(path, dtype="float32", always_2d=True)
    waveform = resample(waveform.mean(axis=1), rate, RATE)
    hop = round(frame_s * RATE)
    rms = np.sqrt(np.mean(waveform[: len(waveform) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    loud = np.flatnonzero(rms >= threshold * rms.max())
    return waveform[loud[0] * hop : (loud[-1] + 1) * hop]


def place(clips: list[np.ndarray], gap_s: float, lead_s: float = 1.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The clips one after another with `gap_s` of silence between them (and `lead_s` before and after), as int16."""
    gap, lead = np.zeros(round(gap_s * RATE), np.float32), np.zeros(round(lead_s * RATE), np.float32)
    parts, spans, position = [lead], [], lead.size
    for index, clip in enumerate(clips):
        spans.append((position / RATE, (position + clip.size) / RATE))
        parts.append(clip)
        position += clip.size
        if index + 1 < len(clips):
            parts.append(gap)
            position += gap.size
    parts.append(lead)
    track = np.concatenate(parts)
    return np.round(np.clip(track, -1, 1) * 32767).astype(np.int16), spans


def write_recording(
    path: Path,
    track: np.ndarray | None,
    faces: list[np.ndarray] | None = None,
    face_spans: list[tuple[float, float]] | None = None,
    duration: float | None = None,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
) -> None:
    """
    An audio-only (.wav/.flac: `faces` None) or video file (`write_video`). Each face is shown, centred on a grey
    background, during its span; between spans the picture is blank.
    """
    if faces is None:
        sf.write(path, track, RATE, subtype="PCM_16")
        return
    width, height = size
    blank = np.full((height, width), 128, np.uint8)

    def picture_at(time_s: float) -> np.ndarray:
        shown = [face for face, (start, end) in zip(faces, face_spans) if start <= time_s < end]
        return on_background(shown[-1], blank) if shown else blank

    write_video(path, track, picture_at, duration if duration is not None else track.size / RATE, fps)


def write_video(
    path: Path, track: np.ndarray | None, picture_at: Callable[[float], np.ndarray], duration: float, fps: int = 10
) -> None:
    """A .mkv of FFV1 grey pictures (`picture_at(time)`, all of one size) and FLAC sound (int16 `track`, or none), both
    lossless so what is decoded is exactly what was written."""
    first = picture_at(0.0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("ffv1", rate=fps)
        video.height, video.width = first.shape
        video.pix_fmt = "gray"
        audio = container.add_stream("flac", rate=RATE, layout="mono") if track is not None else None
        for index in range(round(duration * fps)):
            frame = av.VideoFrame.from_ndarray(picture_at(index / fps), format="gray")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            for start in range(0, track.size, 4096):
                frame = av.AudioFrame.from_ndarray(track[None, start : start + 4096], format="s16", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode())


def on_background(face: np.ndarray, background: np.ndarray) -> np.ndarray:
    picture = background.copy()
    top, left = (background.shape[0] - face.shape[0]) // 2, (background.shape[1] - face.shape[1]) // 2
    picture[top : top + face.shape[0], left : left + face.shape[1]] = face
    return picture


def fer_face(emotion: str, index: int = 0, side: int = 96) -> np.ndarray:
    files = sorted((DATA / "fer2013" / "test" / emotion).glob("*.jpg"))
    with Image.open(files[index]) as image:
        return np.asarray(image.convert("L").resize((side, side), Image.BICUBIC))


CLIPS = [  # (emotion of the face shown, RAVDESS file of actor 1 with that emotion)
    ("neutral", "03-01-01-01-01-01-01"),
    ("happy", "03-01-03-01-01-01-01"),
    ("sad", "03-01-04-01-02-01-01"),
    ("angry", "03-01-05-01-01-01-01"),
    ("fear", "03-01-06-01-02-01-01"),
    ("surprise", "03-01-08-01-01-02-01"),
]


def known_recording(
    path: Path, count: int = len(CLIPS), gap_s: float = 1.5, video: bool = True, size: tuple[int, int] = (160, 120)
) -> list[Placed]:
    """`count` clips (cycling through CLIPS) with `gap_s` of silence between them, each face on screen from half way
    through the silence before its clip to half way through the one after; written to `path` (.mkv of `size`, or
    .wav)."""
    chosen = [CLIPS[index % len(CLIPS)] for index in range(count)]
    speech = {name: trimmed_speech(DATA / "ravdess" / "Actor_01" / f"{name}.flac") for _, name in CLIPS}
    faces = {emotion: fer_face(emotion) for emotion, _ in CLIPS}
    track, spans = place([speech[name] for _, name in chosen], gap_s)
    placed = [Placed(start, end, emotion, faces[emotion]) for (start, end), (emotion, _) in zip(spans, chosen)]
    face_spans = [(p.start - gap_s / 2, p.end + gap_s / 2) for p in placed]
    write_recording(path, track, [p.face for p in placed] if video else None, face_spans, size=size)
    return placed


def peak_memory_of(command: list[str]) -> tuple[float, float]:
    """Peak resident memory (MiB) and wall time (s) of one child process, from the kernel's own accounting."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as console:  # a file, not a pipe: a full pipe would block the child
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=console)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            console.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {console.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument(
        "--gaps", type=float, nargs="+", default=[1.5], help="seconds of silence between clips (one run per value)"
    )
    parser.add_argument(
        "--sizes", nargs="+", default=["160x120"], help="picture sizes WIDTHxHEIGHT of the video (one run per value)"
    )
    parser.add_argument("--model", default=".cache/demo/gia-mic-starter", help="a model folder with its encoders")
    parser.add_argument("--speakers", action="store_true", help="each recording also with --speakers, side by side")
    args = parser.parse_args()
    sizes = [tuple(int(side) for side in size.split("x")) for size in args.sizes]
    gia_mic = Path(sys.executable).with_name("gia-mic")
    results = []
    with tempfile.TemporaryDirectory() as work:
        for minutes, gap, (width, height) in itertools.product(args.minutes, args.gaps, sizes):
            recording = Path(work) / f"recording-{minutes:g}min-{gap:g}s-{width}x{height}.mkv"
            count = max(2, round(minutes * 60 / (gap + 1.7)))  # a clip lasts ~1.7 s
            placed = known_recording(recording, count=count, gap_s=gap, size=(width, height))
            for speakers in (False, True) if args.speakers else (False,):
                output = f"{recording}.{'speakers' if speakers else 'plain'}"
                command = [str(gia_mic), "analyze", str(recording), "--model", args.model, "--output", output]
                peak, seconds = peak_memory_of(command + (["--speakers"] if speakers else []))
                found = len(json.loads((Path(output) / "timeline.json").read_text())["segments"])
                results.append(
                    {
                        "minutes": minutes,
                        "gap_s": gap,
                        "size": f"{width}x{height}",
                        "speakers": speakers,
                        "clips": len(placed),
                        "segments": found,
                    }
                )
                results[-1].update(peak_mib=round(peak), seconds=round(seconds, 1))
                print(json.dumps(results[-1]), flush=True)
    base = results[0]["peak_mib"]
    print(
        "\n| recording | silence between clips | pictures | --speakers | clips | found | peak memory | vs the first "
        "| time |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['minutes']:g} min | {r['gap_s']:g} s | {r['size']} | {'yes' if r['speakers'] else 'no'} | "
            f"{r['clips']} | {r['segments']} | {r['peak_mib']} MiB | x{r['peak_mib'] / base:.2f} | "
            f"{r['seconds']:.0f} s |"
        )


if __name__ == "__main__":
    main()
