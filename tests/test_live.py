"""
Live analysis (`pipeline.live()`): a stream fed piece by piece is cut into the utterances `analyze` finds in the same
recording and given the same answers, each as soon as no later audio can change it; memory stays bounded.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from live import recording_feeds

from modeling_gia_mic.live_gia_mic import LiveOptions, SpeechTracker
from modeling_gia_mic.recording_gia_mic import VAD_CHUNK, SegmentationOptions, VoiceActivityDetector, speech_segments


class ScriptedDetector(torch.nn.Module):
    """A voice-activity detector whose speech probability for a step is written in the step's first sample."""

    def reset_states(self) -> None:
        pass

    def forward(self, chunk: torch.Tensor, rate: int) -> torch.Tensor:
        return chunk[0, 0]


def scripted_audio(probabilities: np.ndarray, cut: int = 0) -> np.ndarray:
    """Audio whose steps carry `probabilities` (the last step `cut` samples short, as a stream ends anywhere)."""
    audio = np.zeros(probabilities.size * VAD_CHUNK - cut, np.float32)
    audio[::VAD_CHUNK] = probabilities
    return audio


def talk_and_pauses(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Speech probabilities of a conversation: runs of speech and pauses of random lengths, some of them clicks."""
    steps, found, speaking = int(seconds * 16000 / VAD_CHUNK), [], False
    while len(found) < steps:
        length = int(rng.exponential(25 if speaking else 20)) + 1
        found += list(rng.uniform(0.5, 1.0, length) if speaking else rng.uniform(0.0, 0.45, length))
        speaking = not speaking
    return np.asarray(found[:steps], np.float32)


def streamed(tracker: SpeechTracker, audio: np.ndarray, rng: np.random.Generator) -> list[tuple[float, float]]:
    """The segments settled as the audio is given in pieces of random lengths, then the rest at its end."""
    found, position = [], 0
    while position < audio.size:
        size = int(rng.integers(100, 16000))
        tracker.add(audio[position : position + size])
        position += size
        found += tracker.settle()[0]
    tracker.finish()
    return found + tracker.settle(final=True)[0]


@pytest.mark.parametrize(
    "options",
    [
        SegmentationOptions(),
        SegmentationOptions(min_silence_s=0.1, speech_pad_s=0.3, max_segment_s=4.0),
        SegmentationOptions(
            min_speech_s=0.6, min_silence_s=0.05, speech_pad_s=0.5, min_segment_s=1.5, max_merge_gap_s=2.0
        ),
    ],
    ids=["default", "padding wider than the pauses", "long joins"],
)
def test_streamed_speech_is_cut_as_the_whole_recording_is(options):
    """300 random conversations, each given in pieces of random sizes: the segments settled one by one are exactly
    `speech_segments` of the whole recording."""
    for seed in range(300):
        rng = np.random.default_rng(seed)
        probabilities = talk_and_pauses(rng, rng.uniform(5, 60))
        audio = scripted_audio(probabilities, cut=int(rng.integers(0, VAD_CHUNK)))
        tracker = SpeechTracker(VoiceActivityDetector(ScriptedDetector()), options, max_open_s=1e9)
        assert streamed(tracker, audio, rng) == speech_segments(probabilities, audio.size / 16000, options), seed


def test_speech_without_a_pause_is_cut_and_the_detector_holds_little():
    """Two minutes of speech without a pause: settled in parts of at most `max_open_s`, the probabilities held
    never more than that."""
    tracker = SpeechTracker(VoiceActivityDetector(ScriptedDetector()), SegmentationOptions(), max_open_s=20.0)
    audio = scripted_audio(np.full(int(120 * 16000 / VAD_CHUNK), 0.9, np.float32))
    found, held, position = [], [], 0
    while position < audio.size:
        tracker.add(audio[position : position + 8000])
        position += 8000
        found += tracker.settle()[0]
        held.append(len(tracker.probabilities))
    tracker.finish()
    found += tracker.settle(final=True)[0]
    assert found[0][0] == 0.0 and found[-1][1] == pytest.approx(120.0, abs=0.05)
    assert all(abs(b[0] - a[1]) < 0.1 for a, b in zip(found, found[1:]))  # nothing between the parts is lost
    assert max(end - start for start, end in found) <= 15.0 + 1e-6
    assert max(held) * VAD_CHUNK / 16000 <= 20.0 + 0.6


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_recording_streamed_gives_analyzes_utterances_and_answers(classifier, talk, kind):
    """Four real sentences (a .wav; a .mkv with the faces on screen) fed in half-second pieces: the utterances
    `analyze` finds in the file, with the same answers, each given once, in order."""
    path: Path = talk[kind]
    expected = classifier(str(path))["segments"]
    live = classifier.live()
    found = []
    for feed in recording_feeds(path, 0.5):
        found += live.feed(**feed).utterances
    found += live.finish().utterances
    assert [(s["start"], s["end"]) for s in found] == [(s["start"], s["end"]) for s in expected]
    assert [(s["label"], s["text"]) for s in found] == [(s["label"], s["text"]) for s in expected]
    for streamed_scores, file_scores in zip((s["scores"] for s in found), (s["scores"] for s in expected)):
        assert streamed_scores == pytest.approx(file_scores, abs=1e-4)


def resident_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def held_bytes(live) -> int:
    """What a live analysis holds of the stream: audio, pictures, speech probabilities and the timeline's entries."""
    audio = sum(samples.nbytes for _, samples in live.media.cutter.chunks)
    pictures = sum(frame.nbytes for _, frame in live.media.frames)
    return audio + pictures + 4 * len(live.speech.probabilities) + 2000 * len(live.timeline)


def test_a_ten_minute_stream_holds_flat_memory(classifier, talk):
    """The four sentences with their pictures, streamed again and again for ten minutes: every utterance is given, the
    timeline keeps the last minute, and neither what the analysis holds nor the process's memory grows. (The pictures
    reach the model whole, not cut to the face: dlib's search is what a face costs, not what the stream holds.)"""
    feeds = list(recording_feeds(talk["video"], 0.5))
    length = max(feed["start"] + feed["audio"].size / feed["sampling_rate"] for feed in feeds if "audio" in feed)
    whole_pictures = copy.copy(classifier)
    whole_pictures.processor = copy.copy(classifier.processor)
    whole_pictures.processor.detect_faces = False
    live = whole_pictures.live(transcribe=False, options=LiveOptions(history_s=60.0))
    held, resident, utterances, timeline = [], {}, 0, 0
    for round_ in range(int(600 / length) + 1):
        offset = round_ * length
        for feed in feeds:
            shifted = {**feed, "frames": [(time + offset, frame) for time, frame in feed["frames"]]}
            if "audio" in feed:
                shifted["start"] = feed["start"] + offset
            update = live.feed(**shifted)
            utterances += len(update.utterances)
            timeline = max(timeline, len(update.timeline))
            held.append(held_bytes(live))
        resident[offset] = resident_mib()
    utterances += len(live.finish().utterances)
    rounds = int(600 / length) + 1
    assert utterances == 4 * rounds
    assert timeline <= 60 / length * 4 + 4  # the last minute
    first_minute = max(held[: len(held) * 60 // 600])
    assert max(held) <= 1.05 * first_minute
    minutes = sorted(resident)
    late = [resident[m] for m in minutes if m >= 180]
    assert max(late) - min(late) < 40, resident


GREY = np.full((120, 160, 3), 128, np.uint8)


@pytest.mark.parametrize(
    "first, bad, message",
    [
        ({}, {"audio": np.zeros((800, 2), np.float32), "sampling_rate": 16000}, "must be mono"),
        ({}, {"audio": np.zeros(800, np.int16), "sampling_rate": 16000}, "must be float samples"),
        ({}, {"audio": np.full(800, np.nan, np.float32), "sampling_rate": 16000}, "NaN or infinite"),
        ({}, {"audio": np.zeros(800, np.float32), "sampling_rate": 0}, "`sampling_rate` must be a positive"),
        ({}, {"audio": np.zeros(800, np.float32), "sampling_rate": None}, "`sampling_rate` must be a positive"),
        (
            {"audio": np.zeros(800, np.float32), "sampling_rate": 16000},
            {"audio": np.zeros(800, np.float32), "sampling_rate": 48000},
            "changed from 16000 to 48000",
        ),
        (
            {"audio": np.zeros(800, np.float32), "sampling_rate": 16000},
            {"audio": np.zeros(800, np.float32), "sampling_rate": 16000, "start": 9.0},
            "must go on where the last piece ended, 0.050 s",
        ),
        ({}, {"frames": [GREY]}, "(time in seconds, picture) pairs"),
        (
            {"frames": [(2.0, GREY)]},
            {"frames": [(1.0, GREY)]},
            "A picture at 1.000 s comes before the one at 2.000 s",
        ),
        ({}, {"frames": [(0.5, np.zeros((0, 5, 3), np.uint8))]}, "The picture at 0.500 s has shape (0, 5, 3)"),
        ({}, {"frames": [(float("nan"), GREY)]}, "A picture's time must be a number"),
    ],
    ids=[
        "stereo",
        "integers",
        "nan",
        "rate 0",
        "no rate",
        "rate changed",
        "gap",
        "no time",
        "backwards",
        "empty",
        "nan time",
    ],
)
def test_bad_pieces_are_one_clear_error_and_the_stream_goes_on(classifier, first, bad, message):
    live = classifier.live(transcribe=False)
    live.feed(**first)
    with pytest.raises(ValueError) as error:
        live.feed(**bad)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert live.feed(frames=[(3.0, GREY)]).time >= 0.0  # still usable


def test_a_finished_stream_takes_nothing_more(classifier):
    live = classifier.live(transcribe=False)
    live.finish()
    with pytest.raises(ValueError, match="was finished"):
        live.feed(audio=np.zeros(800, np.float32), sampling_rate=16000)


def test_audio_that_starts_late_keeps_its_own_times(classifier, talk):
    """A microphone opened 3 s into the stream: the utterances are where they were said, their audio in them."""
    expected = classifier(str(talk["audio"]), transcribe=False)["segments"]
    live, found = classifier.live(transcribe=False), []
    for feed in recording_feeds(talk["audio"], 0.5):
        if "audio" in feed:
            found += live.feed(**{**feed, "start": feed["start"] + 3.0}).utterances
    found += live.finish().utterances
    found_times = [time for s in found for time in (s["start"], s["end"])]
    assert found_times == pytest.approx([time + 3.0 for s in expected for time in (s["start"], s["end"])], abs=0.02)
    assert [(s["label"], set(s["inputs"])) for s in found] == [(s["label"], set(s["inputs"])) for s in expected]


def test_a_failed_analysis_loses_no_utterance(classifier, talk):
    """The model fails once while an utterance settles: the error reaches the caller, and the utterance is given at the
    next update."""
    expected = classifier(str(talk["audio"]), transcribe=False)["segments"]
    live = classifier.live(transcribe=False)
    analyse, failures = live.analyse, []

    def failing_once(media):
        if not failures:
            failures.append(len(media))
            raise RuntimeError("out of memory")
        return analyse(media)

    live.analyse, found = failing_once, []
    for feed in recording_feeds(talk["audio"], 0.5):
        try:
            found += live.feed(**feed, early=False).utterances
        except RuntimeError:
            pass
    found += live.finish().utterances
    assert failures and [(s["start"], s["end"]) for s in found] == [(s["start"], s["end"]) for s in expected]


def test_a_camera_going_on_after_the_audio_stops_holds_bounded_pictures(classifier):
    live = classifier.live(transcribe=False, options=LiveOptions(max_open_s=10.0, max_fps=5.0))
    live.feed(audio=np.zeros(16000, np.float32), sampling_rate=16000)
    for index in range(1000):
        live.feed(frames=[(1.0 + index / 5, GREY)], early=False)
    assert len(live.media.frames) <= 10 * 5 + 1


def test_pictures_before_the_audio_starts_are_all_read(classifier):
    """A camera alone for 12 s, then the microphone: the pictures are read in windows up to the audio, the last one
    shorter, none left out."""
    live, found = classifier.live(transcribe=False), []
    for index in range(120):
        found += live.feed(frames=[(index / 10, GREY)], early=False).utterances
    found += live.feed(audio=np.zeros(32000, np.float32), sampling_rate=16000, start=12.0).utterances
    found += live.finish().utterances
    assert [(s["start"], s["end"]) for s in found] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
