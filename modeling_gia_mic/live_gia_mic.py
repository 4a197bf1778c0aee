"""
Emotion as it happens: audio and pictures fed as they arrive (a microphone and a webcam, or a file read in real time)
are cut into the utterances `analyze` finds in the same recording (the same voice-activity detector, the same
segmentation, the same audio cut and frames), each analysed as soon as no later sound can change it. The utterance
that just ended is analysed early, so the current emotion follows the speaker; its answer is kept when the utterance
settles unchanged. Memory is bounded: only the audio and pictures of speech not yet settled are held, and the
timeline keeps the last `history_s` seconds.

Remote code: torch and numpy; PyAV resamples the audio for the voice-activity detector.
"""

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .audio_gia_mic import SAMPLING_RATE, import_av
from .processing_gia_mic import as_rgb, bounded_size
from .recording_gia_mic import (
    VAD_CHUNK,
    SegmentationOptions,
    SegmentMedia,
    StreamCutter,
    VoiceActivityDetector,
    frame_times,
    long_runs,
    pad,
    speech_runs,
    split_even,
    utterance_groups,
    windows,
)


STEP = VAD_CHUNK / SAMPLING_RATE  # seconds per step of the voice-activity detector
Analyse = Callable[[list[SegmentMedia]], list[dict]]  # segments' media -> their results, in order


@dataclass(frozen=True)
class LiveOptions:
    """How a live stream is held and shown."""

    history_s: float = 60.0  # the timeline keeps the utterances of the last minute
    max_open_s: float = 60.0  # speech going on this long without a pause is cut, so memory stays bounded
    max_fps: float = 10.0  # pictures kept per second; a faster camera's others are dropped
    video_lag_s: float = 2.0  # an utterance waits this long (of audio) for the camera's pictures of it


@dataclass
class LiveUpdate:
    """What a feed changed: the utterances settled since the last update, the current emotion and the timeline."""

    time: float  # seconds of the stream analysed
    utterances: list[dict]
    current: dict | None
    timeline: list[dict] = field(default_factory=list)


class SpeechTracker:
    """
    The voice-activity detector over audio as it arrives, and the speech segments `speech_segments` finds in the whole
    recording, each given once no later audio can change it: a run of speech settles when the next possible speech
    is too far away to be joined to it (`max_merge_gap_s` between their padded ends) or to be one run with it
    (`min_silence_s`). Only the probabilities since the last settled run are held.
    """

    def __init__(self, detector: VoiceActivityDetector, options: SegmentationOptions, max_open_s: float):
        self.detector, self.options, self.max_open_s = detector, options, max_open_s
        detector.model.reset_states()
        self.pending = np.zeros(0, np.float32)  # 16-kHz samples short of a whole step
        self.probabilities: list[float] = []
        self.first_step = 0  # the step of probabilities[0]
        self.before: float | None = None  # the end of the last settled run of speech
        self.samples = 0  # 16-kHz samples given
        self.origin = 0.0  # the time of the first sample (whole steps)

    @property
    def now(self) -> float:
        """Seconds of audio the detector has read."""
        return (self.first_step + len(self.probabilities)) * STEP

    def begin_at(self, time: float) -> None:
        """The stream's audio starts at `time` seconds (before any is given)."""
        self.first_step = round(time / STEP)
        self.origin = self.first_step * STEP

    def add(self, samples: np.ndarray) -> None:
        """16-kHz mono samples, following the ones before."""
        self.samples += samples.size
        self.pending = np.concatenate([self.pending, samples])
        whole = self.pending.size - self.pending.size % VAD_CHUNK
        self.probabilities += self.detector.steps(self.pending[:whole])
        self.pending = self.pending[whole:]

    def finish(self) -> None:
        """The stream ended: its last part step is read padded with silence, as at the end of a file."""
        self.probabilities += self.detector.steps(self.pending)
        self.pending = np.zeros(0, np.float32)

    def groups(self, duration: float) -> tuple[list[list[float]], list[list[float]], bool]:
        """The runs of speech held, their utterance groups (padded and joined), and whether speech goes on."""
        runs, speaking = speech_runs(np.asarray(self.probabilities, np.float32), self.options, self.first_step)
        return runs, utterance_groups(runs, duration, self.options, self.before), speaking

    def settle(self, final: bool = False) -> tuple[list[tuple[float, float]], bool]:
        """
        The segments no later audio can change (all that are left, when `final`: the stream ended), and whether speech
        going on for `max_open_s` was cut to settle them.
        """
        duration = self.origin + self.samples / SAMPLING_RATE if final else self.now
        runs, groups, speaking = self.groups(duration)
        if not groups:
            if not self.is_open(runs, speaking):  # silence and dead clicks: nothing later can reach them
                self.forget(self.first_step + len(self.probabilities), self.before)
            return [], False
        cut = not final and self.now - self.first_step * STEP > self.max_open_s and self.is_open(runs, speaking)
        settled = groups if final or cut else self.settled_groups(runs, groups, speaking)
        if not settled:
            return [], False
        kept = [run for run in long_runs(runs, self.options) if run[0] < settled[-1][1]]
        last = self.now if cut else kept[-1][1]  # the end of the last run settled: the next one is padded to it
        self.forget(round(last / STEP), last)
        return [part for group in settled for part in split_even(group, self.options.max_segment_s)], cut

    def is_open(self, runs: list[list[float]], speaking: bool) -> bool:
        """Whether the last run of speech may still grow: it goes on, or a run starting now would be joined to it."""
        return bool(runs) and (speaking or self.now - runs[-1][1] < self.options.min_silence_s)

    def settled_groups(self, runs: list[list[float]], groups: list[list[float]], speaking: bool) -> list[list[float]]:
        """
        The groups later audio cannot change. Only the last kept run is not final: it may grow, and its padded end
        shrinks to half way to a run still to come, which may make it short enough to join the group before it. So
        all groups are settled where no run can come near it; else all but the one it is in, and that one's
        neighbour where it could still join it.
        """
        options, kept = self.options, long_runs(runs, self.options)
        last, padded = kept[-1], pad(kept, options.speech_pad_s, self.now, self.before)[-1]
        open_run = self.is_open(runs, speaking)
        next_start = runs[-1][0] if open_run else self.now
        far = next_start - padded[1] - options.speech_pad_s >= options.max_merge_gap_s
        far = far and next_start - last[1] >= max(options.min_silence_s, 2 * options.speech_pad_s)
        if far and not (open_run and runs[-1] is last):
            return groups
        if groups[-1][0] != padded[0] or len(groups) < 2:  # it joined the group before it, or has none before it
            return groups[:-1]
        return groups[:-1] if self.never_joined(groups[-2], padded[0], last[1]) else groups[:-2]

    def never_joined(self, group: list[float], start: float, least_end: float) -> bool:
        """Whether a padded run from `start`, ending at `least_end` or later, can never join `group` (`join_close`)."""
        options = self.options
        far = start - group[1] >= options.max_merge_gap_s
        long_enough = min(group[1] - group[0], least_end - start) >= options.min_segment_s
        return far or long_enough or least_end - group[0] > options.max_segment_s

    def forget(self, step: int, end: float | None) -> None:
        """The probabilities before `step` (the end of the last settled run, or of silence) are done with."""
        self.probabilities = self.probabilities[step - self.first_step :]
        self.first_step, self.before = step, end

    @property
    def needed_from(self) -> float:
        """The earliest time a segment not settled yet may start: the first probability held (every held run starts
        there or later), less the padding."""
        return self.first_step * STEP - self.options.speech_pad_s

    def early(self) -> tuple[float, float] | None:
        """
        The last part of the utterance that has just ended (its padding heard) and is not settled: analysed early, it
        is the current emotion a second before the utterance settles.
        """
        runs, groups, speaking = self.groups(self.now)
        if speaking or not groups or self.now - runs[-1][1] < self.options.speech_pad_s:
            return None
        return split_even(groups[-1], self.options.max_segment_s)[-1]


class LiveMedia:
    """
    The audio and pictures that unsettled speech may still need: audio in `StreamCutter`'s buffer (cut and resampled
    as from a file), pictures by time. A span's media is what `cut_segments` hands out for it in a file.
    """

    def __init__(self, num_frames: int, max_fps: float, max_open_s: float):
        self.num_frames, self.min_gap = num_frames, 1.0 / max_fps
        self.cutter: StreamCutter | None = None  # made with the audio's rate
        # the pictures of the longest unsettled speech at most: a camera going on after the audio stops holds no more
        self.frames: deque[tuple[float, np.ndarray]] = deque(maxlen=math.ceil(max_open_s * max_fps) + 1)

    def add_audio(self, time: float, samples: np.ndarray, rate: int) -> None:
        if self.cutter is None:
            self.cutter = StreamCutter(deque(), rate, video=False)
            self.cutter.hold_from = time
        self.cutter.add_audio(time, samples)

    def add_frame(self, time: float, frame) -> bool:
        """A picture in time order; False where it came too soon after the last one kept (dropped)."""
        if not isinstance(time, int | float) or not math.isfinite(time):
            raise ValueError(f"A picture's time must be a number of seconds; got {time!r}.")
        if self.frames and time < self.frames[-1][0]:
            raise ValueError(f"A picture at {time:.3f} s comes before the one at {self.frames[-1][0]:.3f} s.")
        if self.frames and time - self.frames[-1][0] < self.min_gap:
            return False
        self.frames.append((time, bounded(as_rgb(frame, what=f"The picture at {time:.3f} s"))))
        return True

    @property
    def frames_until(self) -> float | None:
        return self.frames[-1][0] if self.frames else None

    def segment(self, start: float, end: float, audio: bool, video: bool) -> SegmentMedia:
        """A span's audio (`audio`) and the pictures shown at its frame times (`video`), as `cut_segments` cuts them:
        each the last picture at or before its time (the first, before any); past the last, that one while it is
        less than a second before the span."""
        targets = frame_times(start, end, self.num_frames)
        segment = SegmentMedia(start, end, frames=[] if video else None, targets=targets)
        if audio and self.cutter is not None:
            segment.waveform = self.cutter.cut_audio(start, end)
        if video and self.frames:
            times = [time for time, _ in self.frames]
            last = times[-1]
            for target in segment.targets:
                if target > last and start > last + 1.0:
                    break
                segment.frames.append(self.frames[max(0, bisect_right(times, target) - 1)][1])
        return segment

    def forget_before(self, time: float) -> None:
        """Media before `time` is not needed by any later span (the last picture before it stays: it is on screen)."""
        if self.cutter is not None:
            self.cutter.hold_from = time
            self.cutter.drop_unneeded_audio()
        while len(self.frames) > 1 and self.frames[1][0] <= time:
            self.frames.popleft()


def bounded(picture: np.ndarray) -> np.ndarray:
    """A picture shrunk as a decoded video frame is (`bounded_size`), so a camera's pictures read as a file's."""
    height, width = picture.shape[:2]
    size = bounded_size(width, height)
    if size == (width, height):
        return np.ascontiguousarray(picture)
    return np.asarray(Image.fromarray(np.asarray(picture, np.uint8)).resize(size, Image.Resampling.BILINEAR))


class LiveAnalysis:
    """
    A live stream's analysis (`MultimodalEmotionRecognitionPipeline.live()`): `feed` audio pieces and pictures as they
    come, each with its time in seconds from the start of the stream; each call returns a `LiveUpdate`. `finish`
    settles the rest. With audio, utterances are found as `analyze` finds them in a file; with pictures only, the
    stream is read in `window_s` windows.
    """

    def __init__(
        self,
        pipeline,
        transcribe: bool = True,
        options: LiveOptions = LiveOptions(),
        analyse: Analyse | None = None,
    ):
        """`analyse`: runs segments' media through the model (default: the pipeline's own batch of them; a server
        gives a queue shared by its viewers)."""
        self.options = options
        self.segmentation: SegmentationOptions = pipeline.segmentation
        modalities = pipeline.model.config.modalities
        self.reads_audio, self.reads_video = bool({"audio", "text"} & set(modalities)), "vision" in modalities
        self.analyse = analyse or (lambda media: pipeline.analyze_media(media, transcribe))
        self.speech = SpeechTracker(pipeline.voice_activity_detector(), self.segmentation, options.max_open_s)
        self.media = LiveMedia(pipeline.processor.num_frames, options.max_fps, options.max_open_s)
        self.resampler = None  # to 16 kHz for the detector, as a file's audio is read
        self.audio_end: float | None = None  # the end of the audio given (None: none yet)
        self.windows_done = 0.0  # pictures only: the stream up to here is analysed
        self.waiting: list[tuple[float, float]] = []  # settled speech waiting for its pictures
        self.timeline: deque[dict] = deque()
        self.current: dict | None = None
        self.early: tuple[tuple[float, float], dict] | None = None  # a span analysed early with all its pictures
        self.cut_at: float | None = None  # the end of an utterance cut at `max_open_s`
        self.finished = False

    @property
    def has_audio(self) -> bool:
        return self.audio_end is not None

    @property
    def now(self) -> float:
        return self.speech.now if self.has_audio else (self.media.frames_until or 0.0)

    def feed(
        self,
        audio: np.ndarray | None = None,
        sampling_rate: int | None = None,
        start: float | None = None,
        frames: list[tuple[float, np.ndarray]] = (),
        early: bool = True,
    ) -> LiveUpdate:
        """
        `audio`: mono float samples at `sampling_rate` from `start` seconds (default: right after the last piece);
        `frames`: (time in seconds, RGB picture) in time order; `early`: analyse the utterance that just ended before
        it settles (a caller that is behind skips it).
        """
        if self.finished:
            raise ValueError("The stream was finished: start a new one with `pipeline.live()`.")
        if audio is not None:
            audio, sampling_rate, start = self.checked_audio(audio, sampling_rate, start)
            if audio.size:
                self.add_audio(audio, sampling_rate, start)
        for item in frames:
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise ValueError(f"`frames` holds (time in seconds, picture) pairs; got a {type(item).__name__}.")
            time, frame = item
            if not self.has_audio and self.media.frames_until is None:
                self.windows_done = time  # pictures only: the windows start with the first
            self.media.add_frame(time, frame)
        return self.update(final=False, early=early)

    def checked_audio(self, audio, rate, start) -> tuple[np.ndarray, int, float | None]:
        """A piece of audio as mono float32 with its rate and start, checked before anything is changed."""
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"`audio` must be mono, of shape (samples,); got shape {audio.shape}.")
        if not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"`audio` must be float samples in [-1, 1]; got {audio.dtype} (scale integers first).")
        if not np.isfinite(audio).all():
            raise ValueError("`audio` holds NaN or infinite samples.")
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
            raise ValueError(f"`sampling_rate` must be a positive whole number of samples a second; got {rate!r}.")
        if self.media.cutter is not None and rate != self.media.cutter.rate:
            raise ValueError(f"`sampling_rate` changed from {self.media.cutter.rate} to {rate} within the stream.")
        if start is not None and (not isinstance(start, int | float) or not math.isfinite(start) or start < 0):
            raise ValueError(f"`start` must be a time in seconds, 0 or more; got {start!r}.")
        if start is not None and self.has_audio and abs(start - self.audio_end) > 1.0 / rate + 1e-6:
            raise ValueError(
                f"`start` is {start:.3f} s; the audio must go on where the last piece ended, {self.audio_end:.3f} s."
            )
        return np.ascontiguousarray(audio, np.float32), int(rate), start

    def finish(self) -> LiveUpdate:
        """The stream ended: the last utterances are settled as at the end of a file."""
        if self.finished:
            raise ValueError("The stream was finished already.")
        self.finished = True
        if self.resampler is not None:
            for piece in self.resampler.resample(None):
                self.speech.add(piece.to_ndarray().reshape(-1))
        self.speech.finish()
        return self.update(final=True)

    def add_audio(self, samples: np.ndarray, rate: int, start: float | None) -> None:
        av = import_av()
        if start is None:
            start = self.audio_end or 0.0
        if self.resampler is None:
            self.resampler = av.AudioResampler("flt", "mono", SAMPLING_RATE)
            self.speech.begin_at(start)
            self.waiting = self.windows_before(start)
            self.windows_done = max(self.windows_done, start)
        self.media.add_audio(start, samples, rate)
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate = rate
        for piece in self.resampler.resample(frame):
            self.speech.add(piece.to_ndarray().reshape(-1))
        self.audio_end = start + samples.size / rate

    def update(self, final: bool, early: bool = False) -> LiveUpdate:
        spans = self.ready_spans(final)
        try:
            settled = self.results(spans)
        except Exception:  # the model failed: the spans wait for the next update, nothing is lost
            if self.has_audio:
                self.waiting = spans + self.waiting
            elif spans:
                self.windows_done = spans[0][0]
            raise
        self.timeline.extend(settled)
        if settled:
            self.current = settled[-1]
        if early and self.has_audio:
            self.analyse_early()
        self.media.forget_before(self.needed_from)
        while self.timeline and self.timeline[0]["end"] < self.now - self.options.history_s:
            self.timeline.popleft()
        return LiveUpdate(round(self.now, 3), settled, self.current, list(self.timeline))

    def ready_spans(self, final: bool) -> list[tuple[float, float]]:
        """The spans to analyse now: settled speech whose pictures are in (or late past `video_lag_s`), or, without
        audio, the windows the pictures have passed."""
        if not self.has_audio:
            return self.passed_windows(final)
        spans, cut = self.speech.settle(final)
        if cut:
            self.cut_at = spans[-1][1]
        self.waiting += spans
        ready = [span for span in self.waiting if final or self.pictures_in(span)]
        self.waiting = self.waiting[len(ready) :]
        return ready

    def pictures_in(self, span: tuple[float, float]) -> bool:
        """Whether the camera's pictures have reached the span's last frame time (or the camera is off, or late)."""
        if not self.reads_video or self.media.frames_until is None:
            return True
        last_target = frame_times(*span, self.media.num_frames)[-1]
        late = self.speech.now - self.media.frames_until > self.options.video_lag_s
        return self.media.frames_until >= last_target or late

    def windows_before(self, start: float) -> list[tuple[float, float]]:
        """Audio starts after pictures alone: the windows of pictures not read yet, the last one up to the audio."""
        if self.media.frames_until is None or start <= self.windows_done:
            return []
        return [
            (self.windows_done + a, self.windows_done + b)
            for a, b in windows(start - self.windows_done, self.segmentation.window_s)
        ]

    def passed_windows(self, final: bool) -> list[tuple[float, float]]:
        """Pictures only: the `window_s` windows the pictures have passed (at the end, the last one too)."""
        until = self.media.frames_until
        if until is None:
            return []
        length = self.segmentation.window_s
        spans = [(self.windows_done + a, self.windows_done + b) for a, b in windows(until - self.windows_done, length)]
        spans = spans if final else [span for span in spans if span[1] - span[0] >= length - 1e-6]
        if spans:
            self.windows_done = spans[-1][1]
        return spans

    def results(self, spans: list[tuple[float, float]]) -> list[dict]:
        """The spans' results: the one analysed early is kept where its span settled unchanged."""
        if not spans:
            return []
        kept = dict([self.early]) if self.early is not None else {}
        todo = [span for span in spans if span not in kept]
        found = dict(zip(todo, self.analyse([self.segment(span) for span in todo]))) if todo else {}
        if self.early is not None and self.early[0] in spans:
            self.early = None
        return [self.noted(kept.get(span) or found[span]) for span in spans]

    @property
    def needed_from(self) -> float:
        """The earliest time of the stream a span not analysed yet may start."""
        if not self.has_audio:
            return self.windows_done
        return min([self.speech.needed_from, *(start for start, _ in self.waiting)])

    def noted(self, result: dict) -> dict:
        if result["end"] == self.cut_at:
            note = f"Speech went on for {self.options.max_open_s:g} s without a pause: the utterance was cut here."
            return {**result, "notes": [*result["notes"], note]}
        return result

    def segment(self, span: tuple[float, float]) -> SegmentMedia:
        audio = self.reads_audio and self.has_audio
        video = self.reads_video and self.media.frames_until is not None
        return self.media.segment(*span, audio=audio, video=video)

    def analyse_early(self) -> None:
        """The utterance that just ended, analysed before it settles: the current emotion."""
        span = self.speech.early()
        if span is None or (self.early is not None and self.early[0] == span):
            return
        result = self.analyse([self.segment(span)])[0]
        if self.pictures_in(span):
            self.early = (span, result)
        self.current = {**result, "early": True}
