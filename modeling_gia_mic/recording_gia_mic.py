"""
Where the speech is in a recording, and what the recording holds there: a voice-activity detector over the audio
track, segments of a length the model is useful at, and one streaming decode pass that hands each segment its own
audio and frames. Nothing holds the whole recording: memory stays flat whatever its length.

Remote code: torch and numpy; PyAV decodes the files (imported when a file is read).
"""

import heapq
import importlib.util
import math
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.utils import cached_file

from .audio_gia_mic import SAMPLING_RATE, audio_rate, decode_audio, import_av, resample
from .processing_gia_mic import check_image_size, missing_file_reason, picture


VAD_CHUNK = 512  # samples per step of Silero VAD at 16 kHz (32 ms)
VAD_FILE, VAD_FOLDER = "silero_vad.jit", "vad"  # where a model folder carries its voice-activity detector
Progress = Callable[[float], None]  # told the seconds of the recording done so far


class RecordingError(ValueError):
    """A recording that cannot be analysed; the message names the file (its name, never the folder it sits in)."""


@dataclass(frozen=True)
class SegmentationOptions:
    """How speech found by the voice-activity detector becomes the segments the model reads."""

    threshold: float = 0.5  # speech probability from which a 32-ms step is speech (it ends below threshold - 0.15)
    min_speech_s: float = 0.25  # shorter bursts are clicks and breaths, not speech
    min_silence_s: float = 0.5  # shorter pauses stay inside one utterance
    speech_pad_s: float = 0.1  # kept around each utterance (never past half the pause to the next one)
    min_segment_s: float = 1.0  # shorter utterances join a neighbour less than `max_merge_gap_s` away
    max_merge_gap_s: float = 1.0
    max_segment_s: float = 15.0  # longer ones are split into equal parts
    window_s: float = 5.0  # a video without an audio track is read in windows of this length


@dataclass
class MediaInfo:
    path: str
    duration: float | None
    has_audio: bool
    has_video: bool

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class SegmentMedia:
    """One segment's span (seconds) with its 16 kHz mono audio and the frames shown at evenly spaced times in it."""

    start: float
    end: float
    waveform: np.ndarray | None = None
    frames: list[np.ndarray] | None = None
    targets: list[float] = field(default_factory=list, repr=False)  # times whose frames are wanted


def video_streams(container) -> list:
    """Picture streams that move: an MP3's or M4A's cover art is not a video."""
    av = import_av()
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def probe(path: str | os.PathLike, max_seconds: float | None = None) -> MediaInfo:
    """What a recording holds, checked before any work: a clear `RecordingError` for what cannot be analysed."""
    av = import_av()
    path, name = str(path), Path(path).name
    if not os.path.isfile(path):
        raise RecordingError(f"{name}: {missing_file_reason(path)}.")
    try:
        with av.open(path) as container:
            has_audio, has_video = bool(container.streams.audio), bool(video_streams(container))
            for stream in video_streams(container)[:1]:  # refused from the header, before a picture is decoded
                context = stream.codec_context
                check_image_size(context.width or 0, context.height or 0, f"A picture of {name}")
            duration = container.duration / av.time_base if container.duration else None
            if duration is None and (has_audio or has_video):
                duration = last_packet_time(container)
    except (av.error.FFmpegError, UnicodeDecodeError, OSError):
        raise RecordingError(f"{name}: not an audio or video file that can be read.") from None
    except ValueError as error:  # pictures over the size limit
        raise RecordingError(str(error)) from None
    if not has_audio and not has_video:
        raise RecordingError(f"{name} has neither an audio track nor pictures.")
    check_length(name, duration, max_seconds)
    return MediaInfo(path, duration, has_audio, has_video)


def check_length(name: str, seconds: float | None, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds is not None and seconds > max_seconds:
        raise RecordingError(
            f"{name} is {format_duration(seconds)} long; at most {format_duration(max_seconds)} are taken here."
        )


def format_duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def last_packet_time(container) -> float | None:
    """The end of the last packet (files whose header gives no duration, such as browser WebM recordings)."""
    end = None
    for packet in container.demux():
        if packet.pts is not None and packet.time_base is not None:
            end = max(end or 0.0, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


class VoiceActivityDetector:
    """
    Silero VAD (MIT licence): a speech probability for every 32 ms of 16 kHz audio, streamed. Its TorchScript file
    ships inside the `silero-vad` package on PyPI, and a saved model folder may carry it in `vad/` so a process with
    only torch and transformers can use it.
    """

    def __init__(self, model: torch.jit.ScriptModule):
        self.model = model

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None) -> "VoiceActivityDetector":
        """From a model folder or Hub repo with `vad/silero_vad.jit`, else from the installed `silero-vad` package."""
        path = None
        if name_or_path is not None:
            path = cached_file(
                str(name_or_path), VAD_FILE, subfolder=VAD_FOLDER, _raise_exceptions_for_missing_entries=False
            )
        path = path or packaged_vad_file()
        if path is None:
            raise RecordingError(
                "Finding speech needs Silero VAD: `pip install silero-vad`, or a model folder with vad/silero_vad.jit."
            )
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13; Silero ships its model as one
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
            return cls(torch.jit.load(str(path), map_location="cpu").eval())

    def probabilities(self, pieces: Iterable[np.ndarray], progress: Progress | None = None) -> np.ndarray:
        """The speech probability of each 512-sample step of the audio given piece by piece."""
        self.model.reset_states()
        found, pending, done = [], np.zeros(0, np.float32), 0
        for samples in pieces:
            pending = np.concatenate([pending, samples])
            whole = pending.size - pending.size % VAD_CHUNK
            found += self.steps(pending[:whole])
            pending, done = pending[whole:], done + whole
            if progress is not None:
                progress(done / SAMPLING_RATE)
        if pending.size:
            found += self.steps(pending)
            if progress is not None:
                progress((done + pending.size) / SAMPLING_RATE)
        return np.asarray(found, np.float32)

    def steps(self, samples: np.ndarray) -> list[float]:
        """The speech probability of each 512-sample step of `samples`, the stream read so far going on (a last step
        shorter than 512 samples is padded with silence, as at the end of a recording)."""
        padded = torch.from_numpy(np.pad(samples, (0, -samples.size % VAD_CHUNK)))
        with torch.inference_mode():
            return [float(self.model(chunk[None], SAMPLING_RATE)) for chunk in padded.view(-1, VAD_CHUNK)]


def packaged_vad_file() -> Path | None:
    """Silero's TorchScript file inside the installed `silero-vad` package, found without importing the package
    (its `__init__` sets torch to one thread for the whole process)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / VAD_FILE
    return path if path.is_file() else None


def speech_segments(
    probabilities: np.ndarray, duration: float, options: SegmentationOptions = SegmentationOptions()
) -> list[tuple[float, float]]:
    """Speech spans (seconds) from per-step speech probabilities, joined, padded and sized for the model."""
    runs, _ = speech_runs(probabilities, options)
    groups = utterance_groups(runs, duration, options)
    return [part for group in groups for part in split_even(group, options.max_segment_s)]


def speech_runs(
    probabilities: np.ndarray, options: SegmentationOptions, first_step: int = 0
) -> tuple[list[list[float]], bool]:
    """
    The runs of speech (seconds; the steps counted from `first_step`) with the pauses shorter than `min_silence_s`
    inside them, and whether speech goes on at the last step. A step starts speech from `threshold` and ends it below
    `threshold - 0.15`.
    """
    step = VAD_CHUNK / SAMPLING_RATE
    spans, start, speaking = [], 0, False
    for index, probability in enumerate(probabilities, first_step):
        if not speaking and probability >= options.threshold:
            start, speaking = index, True
        elif speaking and probability < options.threshold - 0.15:
            spans.append([start * step, index * step])
            speaking = False
    if speaking:
        spans.append([start * step, (first_step + len(probabilities)) * step])
    return join_close(spans, options.min_silence_s, math.inf), speaking


def utterance_groups(
    runs: list[list[float]], duration: float, options: SegmentationOptions, before: float | None = None
) -> list[list[float]]:
    """
    Runs of speech as the model reads them: bursts under `min_speech_s` dropped, each padded (never past half way to
    its neighbour, `before` the end of the one before the first), short ones joined to a close neighbour. The caller
    splits each group into parts of at most `max_segment_s` (`split_even`).
    """
    spans = pad(long_runs(runs, options), options.speech_pad_s, duration, before)
    return join_close(spans, options.max_merge_gap_s, options.max_segment_s, short=options.min_segment_s)


def long_runs(runs: list[list[float]], options: SegmentationOptions) -> list[list[float]]:
    """The runs of speech of at least `min_speech_s`: shorter bursts are clicks and breaths."""
    return [run for run in runs if run[1] - run[0] >= options.min_speech_s]


def join_close(spans: list, gap: float, longest: float, short: float = math.inf) -> list:
    """Join neighbours less than `gap` apart when one of them is shorter than `short`, up to `longest` together."""
    joined = []
    for start, end in spans:
        if joined:
            previous = joined[-1]
            is_short = min(previous[1] - previous[0], end - start) < short
            if is_short and start - previous[1] < gap and end - previous[0] <= longest:
                previous[1] = end
                continue
        joined.append([start, end])
    return joined


def pad(spans: list, seconds: float, duration: float, before: float | None = None) -> list:
    """Each span widened by `seconds` on both sides, never past the recording or half way to its neighbour (`before`:
    the end of a span before the first)."""
    padded = []
    for index, (start, end) in enumerate(spans):
        previous = spans[index - 1][1] if index else before
        first = (previous + start) / 2 if previous is not None else 0.0
        last = (end + spans[index + 1][0]) / 2 if index + 1 < len(spans) else duration
        padded.append([max(start - seconds, first), min(end + seconds, last)])
    return padded


def split_even(span: list, longest: float) -> list[tuple[float, float]]:
    start, end = span
    parts = max(1, math.ceil((end - start) / longest - 1e-9))
    edges = np.linspace(start, end, parts + 1)
    return [(round(float(a), 3), round(float(b), 3)) for a, b in zip(edges[:-1], edges[1:])]


def windows(duration: float, length: float) -> list[tuple[float, float]]:
    """The whole recording in consecutive windows (the last one shorter)."""
    edges = [*np.arange(0.0, duration, length), duration]
    return [(round(float(a), 3), round(float(b), 3)) for a, b in zip(edges[:-1], edges[1:]) if b - a > 1e-3]


def find_speech(
    info: MediaInfo,
    detector: VoiceActivityDetector,
    options: SegmentationOptions = SegmentationOptions(),
    max_seconds: float | None = None,
    progress: Progress | None = None,
    notes: list[str] | None = None,
) -> tuple[list[tuple[float, float]], float]:
    """
    One decode pass of the audio track through the detector: the speech segments and the audio's length. Where the
    audio cannot be decoded further, the speech before that point is kept and `notes` says where it stopped.
    """
    av = import_av()
    seconds = {"end": 0.0}

    def pieces(container) -> Iterator[np.ndarray]:
        decoded = decode_audio(container, SAMPLING_RATE)
        while True:
            try:
                start, samples = next(decoded)
            except StopIteration:
                return
            except av.error.FFmpegError:
                if not seconds["end"]:
                    raise RecordingError(f"{info.name}: the audio track cannot be decoded.") from None
                if notes is not None:
                    notes.append(
                        f"{info.name} cannot be decoded past {seconds['end']:.1f} s: the timeline stops there."
                    )
                return
            seconds["end"] = start + samples.size / SAMPLING_RATE
            check_length(info.name, seconds["end"], max_seconds)
            if not np.isfinite(samples).all():
                raise RecordingError(f"{info.name}: the audio holds NaN or infinite samples at {start:.1f} s.")
            yield samples

    try:
        with av.open(info.path) as container:
            probabilities = detector.probabilities(pieces(container), progress)
    except av.error.FFmpegError:
        raise RecordingError(f"{info.name}: the audio track cannot be decoded.") from None
    return speech_segments(probabilities, seconds["end"], options), seconds["end"]


def truncation_note(info: MediaInfo, decoded_seconds: float) -> list[str]:
    """A note where the audio ends well before the length the file's header gives (a file cut short)."""
    if info.duration is None or info.duration - decoded_seconds <= max(0.5, 0.01 * info.duration):
        return []
    return [
        f"{info.name}: the audio ends at {decoded_seconds:.1f} s of the {info.duration:.1f} s its header gives; the "
        "file looks cut short, and the timeline covers what could be read."
    ]


def frame_times(start: float, end: float, count: int) -> list[float]:
    """`count` evenly spaced times inside a span: the middles of `count` equal parts."""
    return [start + (index + 0.5) * (end - start) / count for index in range(count)]


def cut_segments(
    info: MediaInfo,
    spans: list[tuple[float, float]],
    num_frames: int,
    audio: bool = True,
    video: bool = True,
    notes: list[str] | None = None,
) -> Iterator[SegmentMedia]:
    """
    One decode pass over the recording handing out each span, in order, with its audio (`audio`) and the frames on
    screen at `num_frames` evenly spaced times in it (`video`), as soon as the decoding has passed its end. Where the
    file cannot be decoded further, the spans begun are handed out and `notes` says where it stopped. Only the
    audio since the earliest unfinished span and the last decoded frame are held: the audio and the pictures are
    read by two decoders and taken in time order, so a file that stores long runs of one stream before the other
    (poorly interleaved) needs no more memory than a well-interleaved one.
    """
    av = import_av()
    notes = notes if notes is not None else []
    audio, video = audio and info.has_audio, video and info.has_video
    pending = deque(
        SegmentMedia(start, end, frames=[] if video else None, targets=frame_times(start, end, num_frames))
        for start, end in spans
    )
    if not pending:
        return
    if not audio and not video:
        yield from pending
        return
    with ExitStack() as stack:
        sources, rate = [], None
        if audio:
            container = stack.enter_context(av.open(info.path))
            sources.append(decode_audio(container))
            rate = audio_rate(container)
        cutter = StreamCutter(pending, rate, video)
        if video:
            container = stack.enter_context(av.open(info.path))
            sources.append(timed(container.decode(video_streams(container)[0])))
        try:
            for time, item in heapq.merge(*sources, key=lambda entry: entry[0]):
                yield from cutter.take(time, item)
        except av.error.FFmpegError:
            stopped = f"{info.name} cannot be decoded past"
            if not any(note.startswith(stopped) for note in notes):  # the speech pass may have said so already
                notes.append(f"{stopped} {cutter.time:.1f} s: the timeline stops there.")
            cutter.pending = deque(s for s in cutter.pending if s.start < cutter.time)
    yield from cutter.finish()


def timed(frames: Iterator) -> Iterator[tuple[float, object]]:
    """(presentation time in seconds, frame) of each decoded frame."""
    for frame in frames:
        yield float(frame.time or 0.0), frame


class StreamCutter:
    """The state of `cut_segments`' single pass: buffered audio, the last frame, and the spans still open."""

    def __init__(self, pending: deque, rate: int | None, video: bool):
        """`rate`: the audio track's own sampling rate (None: no audio wanted)."""
        self.pending, self.rate, self.wants_video = pending, rate, video
        self.chunks: deque = deque()  # (first sample index, samples) since the earliest open span
        self.origin: float | None = None  # time of the first audio sample
        self.samples = 0  # audio samples decoded so far
        self.previous = None  # (time, frame) of the last decoded picture
        self.time = 0.0
        self.hold_from: float | None = None  # audio from this time on is kept for spans not known yet (live)

    def take(self, time: float, item) -> Iterator[SegmentMedia]:
        """A piece of audio at the track's own rate (`decode_audio`) or a picture, at its time."""
        if isinstance(item, np.ndarray):
            self.add_audio(time, item)
        else:
            self.add_frame(time, item)
        yield from self.completed()

    def add_audio(self, time: float, samples: np.ndarray) -> None:
        """Audio is kept from the start of the earliest open span on: silence before it is dropped as it comes."""
        if self.origin is None:
            self.origin = time
        self.chunks.append((self.samples, samples))
        self.samples += samples.size
        self.time = max(self.time, self.audio_time)
        self.drop_unneeded_audio()

    def drop_unneeded_audio(self) -> None:
        """Audio before the earliest open span (and before `hold_from`) is not needed any more."""
        times = [self.pending[0].start] if self.pending else []
        times += [self.hold_from] if self.hold_from is not None else []
        first = self.sample_index(min(times)) if times else self.samples
        while self.chunks and self.chunks[0][0] + self.chunks[0][1].size <= first:
            self.chunks.popleft()

    @property
    def audio_time(self) -> float:
        return (self.origin or 0.0) + self.samples / self.rate

    def add_frame(self, time: float, frame) -> None:
        """Every open target time before this frame saw the previous frame (or this one, if it is the first)."""
        shown = (self.previous or (time, frame))[1]
        for segment in self.pending:
            if segment.targets and segment.targets[0] >= time:
                break
            while segment.targets and segment.targets[0] < time:
                segment.frames.append(picture(shown))
                segment.targets.pop(0)
        self.previous = (time, frame)
        self.time = max(self.time, time)

    def completed(self) -> Iterator[SegmentMedia]:
        while self.pending and self.is_complete(self.pending[0]):
            yield self.hand_out(self.pending.popleft())

    def is_complete(self, segment: SegmentMedia) -> bool:
        audio_done = self.rate is None or self.audio_time >= segment.end
        video_done = not self.wants_video or not segment.targets
        return audio_done and video_done

    def hand_out(self, segment: SegmentMedia) -> SegmentMedia:
        if self.rate is not None:
            segment.waveform = self.cut_audio(segment.start, segment.end)
            self.drop_unneeded_audio()
        return segment

    def sample_index(self, time: float) -> int:
        return max(0, round((time - (self.origin or 0.0)) * self.rate))

    def cut_audio(self, start: float, end: float) -> np.ndarray:
        """The span's audio at 16 kHz: cut at the track's own rate, then resampled as a clip file would be."""
        first, last = self.sample_index(start), self.sample_index(end)
        parts = [
            samples[max(0, first - offset) : max(0, last - offset)]
            for offset, samples in self.chunks
            if offset < last and offset + samples.size > first
        ]
        return resample(np.concatenate(parts), self.rate, SAMPLING_RATE) if parts else np.zeros(0, np.float32)

    def finish(self) -> Iterator[SegmentMedia]:
        """The streams have ended: targets after the last picture see it while it is still on screen."""
        while self.pending:
            segment = self.pending.popleft()
            if self.wants_video:
                shown = self.previous is not None and segment.start <= self.previous[0] + 1.0
                segment.frames.extend(picture(self.previous[1]) for _ in segment.targets if shown)
                segment.targets.clear()
            yield self.hand_out(segment)
