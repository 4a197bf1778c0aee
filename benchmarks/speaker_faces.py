"""
Faces of the right person: in videos of conversations assembled from real voices (RAVDESS actors 21-24, who take
turns) and real faces (FER-2013, one face per actor), the share of utterances whose face is their speaker's own, with
`gia-mic analyze --speakers --face speaker` against `--face largest`, and the time the face pass costs.

Each turn is filmed the way interviews are cut: for the first `--reaction` share of it the camera still shows the
listener, large, with the speaker small beside them (a two-shot); then the speaker alone.

    python benchmarks/speaker_faces.py --model .cache/demo/gia-mic-starter [--conversations 4] [--reaction 0.6]
"""

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import recordings  # noqa: E402
from diarization import conversation  # noqa: E402

from modeling_gia_mic.audio_gia_mic import read_audio  # noqa: E402


SIZE, FPS = (320, 240), 10  # the pictures' width and height, and how many a second
LARGE, SMALL = 120, 64  # the sides of a face shown large and small
FACES = {21: ("neutral", 0), 22: ("happy", 1), 23: ("sad", 2), 24: ("angry", 3)}  # actor -> FER-2013 test picture
SETTINGS = {  # name -> (actors, the number of speakers given)
    "2 speakers": ([21, 22], None),
    "3 speakers": ([21, 22, 23], None),
    "3 speakers, --num-speakers 3": ([21, 22, 23], 3),
}


def shot(faces: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Grey faces side by side on a grey background, each given with its side in pixels, vertically centred."""
    width, height = SIZE
    picture = np.full((height, width), 128, np.uint8)
    slots = np.linspace(0, width, len(faces) + 1)
    for (face, side), left, right in zip(faces, slots[:-1], slots[1:]):
        resized = np.asarray(recordings.Image.fromarray(face).resize((side, side)))
        top, start = (height - side) // 2, int((left + right - side) / 2)
        picture[top : top + side, start : start + side] = resized
    return picture


def shot_at(reference: list[tuple[float, float, int]], time_s: float, reaction: float) -> tuple[int, int | None]:
    """Who is on screen at `time_s`: (the speaker, the listener shown large beside them, or None when alone)."""
    index = max([i for i, (start, _, _) in enumerate(reference) if start <= time_s], default=0)
    start, end, speaker = reference[index]
    if time_s < start + reaction * (end - start):
        return speaker, reference[index - 1][2] if index else reference[1][2]
    return speaker, None


def conversation_video(
    path: Path, actors: list[int], seed: int, reaction: float = 0.6, turns: int = 10
) -> list[tuple[float, float, int]]:
    """
    A conversation of `actors` (`diarization.conversation`) written as a video (.mkv) at 10 frames a second: during
    each turn, first (`reaction` of it) the listener large and the speaker small, then the speaker alone; between
    turns the last shot stays. Returns the reference turns (start, end, actor).
    """
    audio, reference = conversation(actors, turns, np.random.default_rng(seed))
    pictures = {actor: recordings.fer_face(*FACES[actor], side=96) for actor in actors}

    def picture_at(time_s: float) -> np.ndarray:
        speaker, listener = shot_at(reference, time_s, reaction)
        if listener is not None:
            return shot([(pictures[listener], LARGE), (pictures[speaker], SMALL)])
        return shot([(pictures[speaker], LARGE)])

    track = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    recordings.write_video(path, track, picture_at, audio.size / recordings.RATE, FPS)
    return reference


def own_faces(
    classifier,
    path: Path,
    reference: list[tuple[float, float, int]],
    face: str,
    reaction: float = 0.6,
    num_speakers: int | None = None,
) -> tuple[int, int]:
    """
    Of the utterances `gia-mic analyze --speakers --face FACE` finds in a `conversation_video`, how many read their
    true speaker's own face in most of their frames (a box is the speaker's when the speaker is alone on screen, or
    when it is the small face of a two-shot), and how many there are.
    """
    from modeling_gia_mic.recording_gia_mic import find_speech, frame_times, probe
    from modeling_gia_mic.speakers_gia_mic import DiarizationOptions, diarize_recording, speaker_names

    info = probe(path)
    spans, _ = find_speech(info, classifier.voice_activity_detector(), classifier.segmentation)
    turns = diarize_recording(
        str(path), spans, classifier.speaker_encoder(), DiarizationOptions(num_speakers=num_speakers)
    )
    chosen = classifier.faces_of_speakers(info, turns, speaker_names(turns), face, lambda *_: None)
    right = 0
    for start, end, _ in turns:
        actor, own = shot_at(reference, (start + end) / 2, reaction)[0], []
        times = frame_times(start, end, classifier.processor.num_frames)
        for index, box in chosen[start].boxes.items():
            speaker, listener = shot_at(reference, math.floor(times[index] * FPS) / FPS, reaction)
            own.append(speaker == actor and (listener is None or (box[0] + box[2]) / 2 > SIZE[0] / 2))
        right += sum(own) > len(own) / 2
    return right, len(turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--reaction", type=float, default=0.6)
    args = parser.parse_args()
    from transformers import pipeline

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    print(f"CPU: {cpu} ({os.cpu_count()} cores), Python {platform.python_version()}, reaction shots {args.reaction}")
    classifier = pipeline("multimodal-emotion-recognition", model=str(args.model), trust_remote_code=True)
    print("\n| conversations | face | own face / utterances |\n|---|---|---:|")
    with tempfile.TemporaryDirectory() as work:
        for name, (actors, told) in SETTINGS.items():
            videos = [Path(work) / f"{name}-{seed}.mkv" for seed in range(args.conversations)]
            references = [conversation_video(path, actors, seed, args.reaction) for seed, path in enumerate(videos)]
            for face in ("speaker", "largest"):
                counts = [own_faces(classifier, p, r, face, args.reaction, told) for p, r in zip(videos, references)]
                right, total = map(sum, zip(*counts))
                print(f"| {name} | {face} | {right / total:.2f} ({right}/{total}) |")
        analysis_cost(classifier, videos[0])


def analysis_cost(classifier, video: Path) -> None:
    """The pipeline's analysis of one conversation video without speakers, with speakers and the face pass, and
    with speakers in its audio alone, one after the other (twice each, the faster kept)."""
    audio = video.with_suffix(".wav")
    recordings.sf.write(audio, read_audio(video, 600.0), recordings.RATE)
    runs = {
        "video, no speakers": (video, None),
        "video, speakers and faces": (video, True),
        "audio, speakers": (audio, True),
    }
    print("\n| analysis | s per min of recording |\n|---|---:|")
    for name, (path, speakers) in runs.items():
        times = []
        for _ in range(2):
            started = time.perf_counter()
            analysis = classifier.analyze(str(path), speakers=speakers)
            list(analysis.segments)
            times.append(time.perf_counter() - started)
        print(f"| {name} | {min(times) / (analysis.duration / 60):.1f} |")


if __name__ == "__main__":
    main()
