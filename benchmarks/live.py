"""
Live analysis: a real recording (RAVDESS sentences with FER-2013 faces on screen) streamed in real time through the
pipeline's live API, as the demo's Live tab streams a microphone and a webcam: pieces of `--chunk` seconds, each given
when its last sample would have been recorded. For each utterance, the latency is the time from its end (the end of
its span, as the voice-activity detector cut it) to the moment its emotion is known (the current emotion: analysed
early, or settled); the ratio to the utterance's length is printed beside it. The streamed timeline is compared with
the pipeline's analysis of the same file. Speech alone (.wav), then speech with faces (.mkv).

    python benchmarks/live.py --model .cache/demo/gia-mic-starter [--clips 12] [--chunk 0.5]
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import recordings  # noqa: E402

from modeling_gia_mic.audio_gia_mic import audio_rate, decode_audio, import_av  # noqa: E402
from modeling_gia_mic.processing_gia_mic import picture  # noqa: E402
from modeling_gia_mic.recording_gia_mic import video_streams  # noqa: E402


def recording_feeds(path: Path, chunk_s: float = 0.5) -> Iterator[dict]:
    """
    The recording as a live stream gives it: `LiveAnalysis.feed` arguments, each `chunk_s` seconds of audio at the
    track's own rate with the pictures shown before its end, in time order (a video without audio: pictures only).
    """
    av = import_av()
    with av.open(str(path)) as sound, av.open(str(path)) as film:
        pictures = iter(())
        if video_streams(film):
            pictures = ((float(f.time or 0.0), picture(f)) for f in film.decode(video_streams(film)[0]))
        waiting = next(pictures, None)
        if not sound.streams.audio:
            while waiting is not None:
                yield {"frames": [waiting]}
                waiting = next(pictures, None)
            return
        rate = audio_rate(sound)
        pieces, held, start = [], 0, None
        for time_s, samples in decode_audio(sound):
            start = time_s if start is None else start
            pieces.append(samples)
            held += samples.size
            if held >= chunk_s * rate:
                audio = np.concatenate(pieces)
                frames, waiting = shown_before(pictures, waiting, start + audio.size / rate)
                yield {"audio": audio, "sampling_rate": rate, "start": start, "frames": frames}
                pieces, held, start = [], 0, None
        if pieces:
            audio = np.concatenate(pieces)
            frames, waiting = shown_before(pictures, waiting, start + audio.size / rate)
            yield {"audio": audio, "sampling_rate": rate, "start": start, "frames": frames}
        rest = [waiting] if waiting is not None else []
        yield {"frames": rest + list(pictures)}


def camera_file(video: Path, y4m: Path, scale: int = 2) -> Path:
    """A video's pictures, `scale` times larger, as the .y4m a browser's fake camera plays
    (`--use-file-for-fake-video-capture`)."""
    av = import_av()
    with av.open(str(video)) as source, av.open(str(y4m), "w", format="yuv4mpegpipe") as target:
        stream = video_streams(source)[0]
        out = target.add_stream("rawvideo", rate=stream.average_rate or 10)
        out.width, out.height, out.pix_fmt = stream.width * scale, stream.height * scale, "yuv420p"
        for frame in source.decode(stream):
            larger = np.repeat(np.repeat(frame.to_ndarray(format="rgb24"), scale, 0), scale, 1)
            target.mux(out.encode(av.VideoFrame.from_ndarray(larger, format="rgb24")))
        target.mux(out.encode(None))
    return y4m


def shown_before(pictures: Iterator, waiting, end: float) -> tuple[list, object]:
    """The pictures (from `waiting` on) whose time is before `end`, and the first one after it."""
    frames = []
    while waiting is not None and waiting[0] < end:
        frames.append(waiting)
        waiting = next(pictures, None)
    return frames, waiting


def stream_in_real_time(live, path: Path, chunk_s: float) -> tuple[list[dict], dict[float, float]]:
    """
    The recording fed at the pace it would be recorded: the settled utterances, and for each utterance's end (its
    span's), the stream time at which its emotion was first known.
    """
    known: dict[float, float] = {}
    utterances = []
    began = time.perf_counter()
    for feed in recording_feeds(path, chunk_s):
        if "audio" in feed:
            due = feed["start"] + feed["audio"].size / feed["sampling_rate"]
            time.sleep(max(0.0, due - (time.perf_counter() - began)))
        update = live.feed(**feed)
        now = time.perf_counter() - began
        utterances += update.utterances
        for result in [*update.utterances, *([update.current] if update.current else [])]:
            known.setdefault(result["end"], now)
    update = live.finish()
    utterances += update.utterances
    for result in update.utterances:
        known.setdefault(result["end"], time.perf_counter() - began)
    return utterances, known


def measure(classifier, path: Path, placed: list, chunk_s: float) -> list[float]:
    """Streams one recording in real time: prints each utterance's latency; returns them."""
    expected = classifier(str(path))["segments"]
    utterances, known = stream_in_real_time(classifier.live(), path, chunk_s)
    same = [(u["start"], u["end"], u["label"]) for u in utterances] == [
        (s["start"], s["end"], s["label"]) for s in expected
    ]
    latencies, ratios = [], []
    for utterance in utterances:
        latencies.append(known[utterance["end"]] - utterance["end"])
        ratios.append(latencies[-1] / (utterance["end"] - utterance["start"]))
        span = f"{utterance['start']:6.2f}-{utterance['end']:6.2f} s"
        print(f"  {span}  latency {latencies[-1]:5.2f} s ({ratios[-1]:.2f} of the utterance)")
    print(
        f"{path.suffix}: {len(utterances)} utterances for {len(placed)} sentences ({len(expected)} in the file's "
        f"analysis; the same spans and labels: {same}); from the end of an utterance to its emotion: median "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s; median ratio to the utterance's length "
        f"{statistics.median(ratios):.2f}\n"
    )
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=".cache/demo/gia-mic-starter", help="a model folder with its encoders")
    parser.add_argument("--clips", type=int, default=12, help="RAVDESS sentences in the recording")
    parser.add_argument("--chunk", type=float, default=0.5, help="seconds of audio in each piece streamed")
    args = parser.parse_args()
    from transformers import pipeline

    classifier = pipeline("multimodal-emotion-recognition", model=args.model, trust_remote_code=True)
    classifier.live().feed(audio=np.zeros(16000, np.float32), sampling_rate=16000)  # the models loaded and warm
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; pieces of {args.chunk:g} s")
    with tempfile.TemporaryDirectory() as folder:
        for name, video in (("speech only (.wav)", False), ("speech and faces (.mkv)", True)):
            path = Path(folder) / ("talk.mkv" if video else "talk.wav")
            print(name)
            measure(classifier, path, recordings.known_recording(path, count=args.clips, video=video), args.chunk)


if __name__ == "__main__":
    main()
