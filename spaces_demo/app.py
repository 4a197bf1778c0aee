"""
Multimodal emotion demo: speak, type and show your face; see the emotion, how much each input moved it, and how much
each input listened to the others.

    python app.py --model ../.cache/demo/gia-mic-starter        # or a Hub id; also GIA_MIC_MODEL=...

The model is loaded exactly as on a Hugging Face Space: `AutoModelForAudioClassification` / `AutoProcessor` with
`trust_remote_code=True` (a GIA-MIC, MCIHN or MIAR folder). A Whisper model in the model's `asr/` subfolder (or
GIA_MIC_ASR) transcribes speech when no text is typed and "Transcribe my speech" is on. Faces are found with the
processor's face detector when it has `detect_faces` on (the starter model's does).

Many users at once: up to `--workers` requests are handled at a time; the requests which arrive together run as one
batch of the pipeline (decoding, speech recognition, the encoders, and the fusions that explain the prediction,
which reuse the encoders' outputs). The app uses the pipeline's documented API only.
"""

import argparse
import copy
import logging
import math
import os
import queue
import socket
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from transformers import pipeline
from transformers.utils import logging as transformers_logging


HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = os.environ.get("GIA_MIC_MODEL", str(HERE.parent / ".cache" / "demo" / "gia-mic-starter"))
MAX_AUDIO_SECONDS = 30.0
MAX_RECORDING_SECONDS = 600.0  # "Analyse a recording": 10 minutes here (`gia-mic analyze` streams any length)
TASK = "multimodal-emotion-recognition"
NAMES = {"text": "text", "audio": "speech", "vision": "face"}  # as the pipeline names the inputs
OWNERS = {"text": "your words", "speech": "your voice", "face": "your face"}
log = logging.getLogger("gia-mic-demo")


def user_error(message: str) -> gr.Error:
    """A problem with what the user gave: one line on the server console, the message on the page, no traceback."""
    log.info("rejected a request: %s", message)
    return gr.Error(message, print_exception=False)


def with_readable_upload_errors(component, message: str):
    """
    An upload that a component's own preprocessing refuses (an unreadable image, a file of another type) is a
    readable error in the page and one line on the console, not a traceback. (The instance's method is wrapped: a
    subclass would make Gradio write a .pyi file beside this app.)
    """
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except Image.DecompressionBombError:
            raise user_error(f"The image is over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels.") from None
        except gr.Error as error:
            raise user_error(str(error)) from None
        except (UnidentifiedImageError, OSError):
            raise user_error(message) from None

    component.preprocess = checked
    return component


class BatchingQueue:
    """
    Items submitted from many threads at about the same time run together: a worker takes the first waiting item,
    gathers those that arrive less than `wait_s` apart (at most `max_batch`, grouped by `key`) and calls `run(items)`
    once per group. Each caller gets its own result, or its own exception: a batch that fails is run again item by
    item, so one caller's bad input never fails the others.
    """

    def __init__(
        self, run: Callable[[list], list], key: Callable[[Any], Hashable] = lambda _: 0, max_batch=8, wait_s=0.03
    ):
        self.run, self.key, self.max_batch, self.wait_s = run, key, max_batch, wait_s
        self.items: queue.Queue = queue.Queue()
        threading.Thread(target=self._work, daemon=True).start()

    def __call__(self, item: Any) -> Any:
        return self.map([item])[0]

    def map(self, items: list) -> list:
        """Several items of one caller, queued together: batched with each other and with other callers' items."""
        futures = [Future() for _ in items]
        for item, future in zip(items, futures):
            self.items.put((item, future))
        return [future.result() for future in futures]

    def _work(self) -> None:
        while True:
            batch = [self.items.get()]
            try:
                while len(batch) < self.max_batch:
                    batch.append(self.items.get(timeout=self.wait_s))
            except queue.Empty:
                pass
            groups: dict[Hashable, list] = {}
            for item, future in batch:
                groups.setdefault(self.key(item), []).append((item, future))
            for group in groups.values():
                self._run(group)

    def _run(self, group: list[tuple[Any, Future]]) -> None:
        """Run a group as one batch; if the batch fails, each item alone, so one bad request fails only itself."""
        try:
            results = self.run([item for item, _ in group])
        except Exception as error:
            if len(group) == 1:
                group[0][1].set_exception(error)
            else:
                for item in group:
                    self._run([item])
            return
        for (_, future), result in zip(group, results):
            future.set_result(result)


class EmotionDemo:
    """
    The model's `multimodal-emotion-recognition` pipeline (its own remote code: model, processor, Whisper from its
    `asr/` and Silero VAD from its `vad/`), through its documented API only: `predict` for the page (one sample,
    explained), `analyze` for a recording.
    """

    def __init__(self, model_id: str, asr_id: str | None = None, max_batch: int = 16):
        self.pipe = pipeline(
            TASK,
            model=model_id,
            trust_remote_code=True,
            asr=asr_id,
            asr_batch_size=max_batch,  # the requests that arrive together, transcribed as one batch
            asr_bfloat16="auto",  # twice as fast where the CPU computes bfloat16, the same words (BENCHMARKS.md)
        )
        self.model = self.pipe.model
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        # A batch of one costs half a batch of ten (the recogniser's decoder steps), so the queue waits a little for
        # the requests that arrive together: the clients answered by one batch come back within a few tenths of a
        # second (benchmarks/demo_load.py).
        self.explain = BatchingQueue(self.explained, key=lambda request: request[1], max_batch=max_batch, wait_s=0.2)
        # The live streams' utterances, of all viewers, as batches of the pipeline (grouped by the transcribe choice).
        self.live_utterances = BatchingQueue(self.analysed, key=lambda item: item[1], max_batch=max_batch, wait_s=0.02)

    def explained(self, requests: list[tuple[dict, bool]]) -> list[dict]:
        """Requests with the same `transcribe` choice, as one batch of the pipeline, each explained."""
        samples = [sample for sample, _ in requests]
        return self.pipe(
            samples, batch_size=len(samples), explain=True, transcribe=requests[0][1], max_seconds=MAX_AUDIO_SECONDS
        )

    def analysed(self, items: list[tuple[Any, bool]]) -> list[dict]:
        """Live utterances (`SegmentMedia`) with the same `transcribe` choice, as one batch of the pipeline."""
        media = [copy.copy(segment) for segment, _ in items]  # a batch that fails is rerun with the pictures
        return self.pipe.analyze_media(media, transcribe=items[0][1])

    def live_analysis(self, transcribe: bool):
        """A viewer's live analysis: the pipeline's, its utterances run through the queue all viewers share."""
        return self.pipe.live(
            transcribe=transcribe,
            analyse=lambda media: self.live_utterances.map([(segment, transcribe) for segment in media]),
        )

    # --- one request ---------------------------------------------------------------------------------------------

    def predict(self, audio_path, text, use_speech, image_path, video_path):
        """The page's inputs through the pipeline; a problem with them is a `gr.Error` that names it."""
        given = {"text": (text or "").strip(), "audio": audio_path, "image": image_path, "video": video_path}
        sample = {name: value for name, value in given.items() if value}
        if not sample:
            raise user_error("Give at least one input: record or upload speech, type a sentence, or show a face.")
        try:
            result = self.explain((sample, bool(use_speech)))
        except ValueError as error:  # the input's own problem, named by the pipeline (the file's name, no folder)
            raise user_error(str(error)) from None
        contributions = self.contributions(result["contributions"])
        table = pd.DataFrame(
            [[name, alone["label"], round(alone["score"], 3)] for name, alone in result["inputs"].items()],
            columns=["input", "prediction alone", "confidence"],
        )
        return (
            result["scores"],
            contributions,
            self.unsure(result) + self.sentence(contributions, result["label"]),
            self.gate_table(result["gates"]),
            result["text"] or "",
            table,
            "\n\n".join(result["notes"]),
        )

    # --- a recording ----------------------------------------------------------------------------------------------

    def analyze(self, recording_path, speakers=False, progress=gr.Progress()):  # noqa: B008 (Gradio's progress bar)
        """
        The timeline of an uploaded recording: a plot with each segment's words on hover, a table and a CSV; with
        `speakers`, who spoke when (one lane per speaker) and each speaker's summary.
        """
        if not recording_path:
            raise user_error("Upload a recording first: an audio or video file of up to 10 minutes.")

        def report(stage: str, done: float, total: float | None) -> None:
            progress(min(done / total, 1.0) if total else None, desc=stage)

        try:
            timeline = self.pipe(
                recording_path, max_seconds=MAX_RECORDING_SECONDS, progress=report, speakers=bool(speakers)
            )
        except ValueError as error:  # the recording's own problem, named by the pipeline
            raise user_error(str(error)) from None
        segments = timeline["segments"]
        table = self.segment_table(segments)
        csv_path = Path(tempfile.mkdtemp(prefix="timeline-")) / f"{Path(recording_path).stem}-timeline.csv"
        table.to_csv(csv_path, index=False)
        found = f"{len(segments)} utterance{'s' if len(segments) != 1 else ''} in {timeline['duration']:.0f} s."
        people = timeline.get("speakers", [])
        return (
            self.timeline_points(segments),
            table,
            str(csv_path),
            " ".join([found, *timeline["notes"]]),
            gr.update(value=speaker_lanes(segments, people, timeline["duration"], self.labels), visible=bool(people)),
            gr.update(value=self.speaker_table(people), visible=bool(people)),
        )

    def speaker_table(self, people: list[dict]) -> pd.DataFrame:
        """Each speaker's speaking time, utterances, face (in a video), most frequent emotion and its changes."""
        rows = [
            {
                "speaker": own["speaker"],
                "speaking time (s)": own["seconds"],
                "utterances": own["utterances"],
                "face": own.get("face_id") or "",
                "mostly": f"{own['emotion']} ({own['shares'][own['emotion']]:.0%})" if own["emotion"] else "",
                "changes": ", ".join(f"{c['time']:.1f} s {c['from']} -> {c['to']}" for c in own["changes"]),
            }
            for own in people
        ]
        columns = ["speaker", "speaking time (s)", "utterances", "face", "mostly", "changes"]
        return pd.DataFrame(rows, columns=columns)

    def segment_table(self, segments: list[dict]) -> pd.DataFrame:
        inputs = [name for name in NAMES.values() if any(name in s["inputs"] for s in segments)]
        who = [key for key in ("speaker", "face_id") if any(key in s for s in segments)]
        rows = [
            {
                "start": s["start"],
                "end": s["end"],
                **{key: s.get(key) or "" for key in who},
                "words": s["text"] or "",
                "emotion": s["label"] or "",
                "confidence": round(s["score"], 3) if s["score"] is not None else None,
                **{f"{name} alone": s["inputs"].get(name, {}).get("label", "") for name in inputs},
                "notes": " ".join(s["notes"]),
            }
            for s in segments
        ]
        columns = [
            "start",
            "end",
            *who,
            "words",
            "emotion",
            "confidence",
            *(f"{name} alone" for name in inputs),
            "notes",
        ]
        return pd.DataFrame(rows, columns=columns)

    def timeline_points(self, segments: list[dict]) -> pd.DataFrame:
        """Each emotion's probability at the middle of each segment, with the segment's words for the hover."""
        rows = [
            {
                "time (s)": (s["start"] + s["end"]) / 2,
                "emotion": label,
                "probability": s["scores"][label],
                "words": s["text"] or "",
            }
            for s in segments
            if s["label"] is not None
            for label in self.labels
        ]
        return pd.DataFrame(rows, columns=["time (s)", "emotion", "probability", "words"])

    # --- explanation ---------------------------------------------------------------------------------------------

    @staticmethod
    def contributions(contributions: dict[str, float]) -> pd.DataFrame:
        """The pipeline's contribution of each input: those that raised the answer first, the largest first."""
        rows = [{"input": name, "contribution": round(value, 4)} for name, value in contributions.items()]
        rows.sort(key=lambda row: -row["contribution"])
        return pd.DataFrame(rows, columns=["input", "contribution"])

    @staticmethod
    def unsure(result: dict) -> str:
        """Said first where the model is not sure of its answer (its probability under `uncertain_below`)."""
        if not result["uncertain"]:
            return ""
        return f"**Not sure**: the best guess, *{result['label']}*, has only {round(100 * result['score'])} %. "

    @staticmethod
    def sentence(contributions: pd.DataFrame, label: str) -> str:
        """
        'Your face raised *happy* by 41 points; your words lowered it by 5.' The sentence starts with what raised the
        answer (`contributions` comes ordered so); where nothing did, with the answer itself.
        """
        nothing_raised = not contributions.empty and round(100 * contributions["contribution"].iloc[0]) < 0
        parts = [f"your inputs together gave *{label}*"] if nothing_raised else []
        for row in contributions.itertuples():
            points = round(100 * row.contribution)
            verb = "raised" if points >= 0 else "lowered"
            target = "it" if parts else f"*{label}*"
            parts.append(
                f"{OWNERS[row.input]} {verb} {target} by {abs(points)} point{'s' if abs(points) != 1 else ''}"
            )
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "." if text else ""

    @staticmethod
    def gate_table(gates: dict[str, float]) -> pd.DataFrame:
        """The pipeline's gates ('speech->text': how much speech took in of the text), largest first."""
        rows = [
            {"interaction": pair.replace("->", " listened to "), "gate": round(value, 3)}
            for pair, value in sorted(gates.items(), key=lambda item: -item[1])
        ]
        return pd.DataFrame(rows, columns=["interaction", "gate"])


# Each emotion's colour in the speakers' lanes, in the model's label order: the probability plot's own (Vega's
# tableau10), so an emotion has one colour on the page.
EMOTION_COLOURS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
LANE, LEFT = 34, 110  # a lane's height and the names' width, in pixels


def speaker_lanes(segments: list[dict], people: list[dict], duration: float, labels: list[str], width=900) -> str:
    """
    One lane per speaker (in order of first appearance), each utterance a block from its start to its end in the
    colour of its emotion (never a line between utterances), its words and emotion on hover: an SVG, with a legend.
    """
    if not people:
        return ""
    colour = {label: EMOTION_COLOURS[i % len(EMOTION_COLOURS)] for i, label in enumerate(labels)}
    scale = (width - LEFT - 10) / max(duration, 1e-6)
    parts = []
    for row, own in enumerate(people):
        name = escape(own["speaker"])
        parts.append(f'<text x="{LEFT - 8}" y="{row * LANE + 22}" text-anchor="end" font-size="13">{name}</text>')
        parts += [utterance_block(s, row, scale, colour) for s in segments if s.get("speaker") == own["speaker"]]
    axis = len(people) * LANE + 16
    parts += time_axis(range(0, int(duration) + 1, max(1, round(duration / 10))), 0.0, scale, axis)
    svg = f'<svg id="speaker-lanes" width="{width}" height="{axis + 6}" role="img" aria-label="Who spoke when">'
    legend = emotion_legend(segments, colour)
    return f"<div><b>Who spoke when</b> (hover an utterance for its words)</div>{svg}{''.join(parts)}</svg>{legend}"


def emotion_legend(segments: list[dict], colour: dict[str, str]) -> str:
    """A swatch and name for each emotion the segments show, in order of appearance."""
    seen = dict.fromkeys(s["label"] for s in segments if s["label"] is not None)
    return " ".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{colour[label]};margin:0 4px 0 12px">'
        f"</span>{escape(label)}"
        for label in seen
    )


def time_axis(ticks: range, origin: float, scale: float, y: int) -> list[str]:
    """Labels of whole seconds under a timeline that starts at `origin`."""
    return [
        f'<text x="{LEFT + (tick - origin) * scale:.1f}" y="{y}" font-size="11" text-anchor="middle">{tick} s</text>'
        for tick in ticks
    ]


def utterance_block(segment: dict, row: int, scale: float, colour: dict[str, str], origin: float = 0.0) -> str:
    """An utterance's block in a lane (`row`), from its start to its end (seconds after `origin`)."""
    said = f"{segment['start']:.1f}-{segment['end']:.1f} s  {segment['label'] or 'no answer'}: {segment['text'] or ''}"
    start = max(segment["start"], origin)
    x, length = LEFT + (start - origin) * scale, max((segment["end"] - start) * scale, 1)
    return (
        f'<rect class="utterance" x="{x:.1f}" y="{row * LANE + 4}" width="{length:.1f}" height="{LANE - 8}" '
        f'fill="{colour.get(segment["label"], "#cccccc")}" data-emotion="{escape(segment["label"] or "")}">'
        f"<title>{escape(said)}</title></rect>"
    )


class LiveSession:
    """
    One viewer's live stream: the microphone's pieces and the webcam's pictures, timed by when they arrive, fed in
    order to the pipeline's live analysis by the session's own worker, so the page's events return at once and no
    piece of audio waits behind the model. A picture that arrives while work is waiting is dropped (the camera sends
    the next one soon): a slow machine drops pictures rather than falling behind, and skips the early analysis of an
    utterance (it settles a second later). Audio is never dropped: the utterances need all of it. Stopping the
    microphone settles the last utterance; starting it again begins a new analysis, the timeline kept.
    """

    def __init__(self, demo_model: "EmotionDemo"):
        self.demo_model = demo_model
        self.inbox: queue.Queue = queue.Queue()
        self.worker: threading.Thread | None = None
        self.starting = threading.Lock()
        self.problem: str | None = None  # why the last analysis stopped, for the page
        self.analysis, self.transcribe, self.began = None, None, None
        self.earlier: list[dict] = []  # the utterances of the analyses stopped before this one
        self.current, self.time, self.timeline = None, 0.0, []
        self.shown_at = -math.inf  # when the page was last given the state

    def clock(self) -> float:
        """Seconds since the stream began (its first piece or picture)."""
        if self.began is None:
            self.began = time.monotonic()
        return time.monotonic() - self.began

    def hear(self, piece, transcribe: bool):
        """A piece of the microphone's audio: (rate, samples) as Gradio streams it."""
        if piece is not None:
            rate, samples = piece
            samples = mono_float(samples)
            start = max(0.0, self.clock() - samples.size / rate)
            self.send({"audio": samples, "sampling_rate": rate, "start": start}, transcribe)
        return self.shown()

    def see(self, picture, transcribe: bool):
        """A picture of the webcam, dropped where work is waiting."""
        if picture is not None and self.inbox.empty():
            self.send({"frames": [(self.clock(), np.asarray(picture))]}, transcribe)
        return self.shown()

    def stop(self):
        """The microphone stopped: its last utterance is settled."""
        self.send(None, None)
        return self.shown()

    def send(self, feed: dict | None, transcribe: bool | None) -> None:
        with self.starting:  # two handlers at once start one worker
            if self.worker is None:
                self.worker = threading.Thread(target=self.work, daemon=True)
                self.worker.start()
            self.inbox.put((feed, transcribe))

    def work(self) -> None:
        """The session's worker: each feed in order, until the viewer leaves. A feed that fails ends the stream's
        analysis with a message on the page (and one line on the console); the next piece starts a new one."""
        while (item := self.inbox.get()) is not False:
            try:
                self.take(*item)
            except Exception as error:
                log.info("a live stream failed: %s", error)
                self.problem, self.analysis = f"The live analysis stopped: {error}", None
        self.analysis, self.current, self.earlier, self.timeline = None, None, [], []

    def take(self, feed: dict | None, transcribe: bool | None) -> None:
        if feed is None:
            if self.analysis is not None and self.analysis.has_audio:
                self.settle()
            return
        if self.analysis is not None and transcribe != self.transcribe:
            self.settle()
        if self.analysis is None:
            self.analysis, self.transcribe, self.problem = self.demo_model.live_analysis(transcribe), transcribe, None
        if "audio" in feed and self.analysis.has_audio:
            feed = {**feed, "start": None}  # the microphone's pieces follow each other
        self.show(self.analysis.feed(**feed, early=self.inbox.empty()))

    def settle(self) -> None:
        self.show(self.analysis.finish())
        self.earlier, self.analysis = self.timeline, None

    def show(self, update) -> None:
        """An update of the analysis: the current emotion, and the timeline of the last minute."""
        self.current, self.time = update.current or self.current, max(self.time, update.time)
        self.timeline = [u for u in [*self.earlier, *update.timeline] if u["end"] > self.time - 60.0]

    def shown(self):
        """The current emotion, each input's own, and the timeline of the last minute: once a second (the microphone
        streams a piece every tenth of a second; the page is not redrawn for each)."""
        if self.clock() - self.shown_at < 1.0:
            return [gr.skip()] * 3
        self.shown_at = self.clock()
        timeline = live_timeline(self.timeline, self.time, self.demo_model.labels)
        said = inputs_line(self.current) if self.problem is None else f"**{self.problem}**"
        return current_emotion(self.current), said, timeline

    def close(self) -> None:
        """The viewer left: the work waiting is dropped, and the worker ends, letting go of what the stream held."""
        with self.starting:
            while not self.inbox.empty():
                self.inbox.get_nowait()
            if self.worker is None:
                self.analysis, self.current, self.earlier, self.timeline = None, None, [], []
            self.inbox.put(False)


def mono_float(samples: np.ndarray) -> np.ndarray:
    """A microphone's samples (integers or floats, one or more channels) as mono float32 in [-1, 1]."""
    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / np.iinfo(samples.dtype).max
    samples = samples.astype(np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def current_emotion(result: dict | None) -> str:
    """The current emotion, large, with its confidence ("not sure" below the model's `uncertain_below`)."""
    if result is None or result["label"] is None:
        return '<div id="live-current">Listening and watching…</div>'
    label, score = escape(result["label"]), round(100 * result["score"])
    said = f"not sure (best guess: {label}, {score} %)" if result["uncertain"] else f"{label} ({score} %)"
    words = f'<div class="live-words">"{escape(result["text"])}"</div>' if result.get("text") else ""
    span = f"{result['start']:.1f}-{result['end']:.1f} s"
    return (
        f'<div id="live-current" data-emotion="{label}"><span style="font-size:2em">{said}</span> '
        f"<small>{span}</small>{words}</div>"
    )


def inputs_line(result: dict | None) -> str:
    """Each input's own emotion: 'speech: neutral (61 %) · face: happy (80 %)'."""
    if result is None:
        return ""
    own = result["inputs"].items()
    return " · ".join(f"{name}: {alone['label']} ({round(100 * alone['score'])} %)" for name, alone in own)


def live_timeline(utterances: list[dict], now: float, labels: list[str], seconds: float = 60.0, width=900) -> str:
    """The last `seconds` of the stream, one block per utterance in the colour of its emotion, scrolling with it."""
    colour = {label: EMOTION_COLOURS[i % len(EMOTION_COLOURS)] for i, label in enumerate(labels)}
    origin = max(0.0, now - seconds)
    scale = (width - LEFT - 10) / seconds
    parts = [f'<text x="{LEFT - 8}" y="22" text-anchor="end" font-size="13">utterances</text>']
    parts += [utterance_block(s, 0, scale, colour, origin) for s in utterances if s["end"] > origin]
    parts += time_axis(range(math.ceil(origin / 10) * 10, int(origin + seconds) + 1, 10), origin, scale, 50)
    svg = f'<svg id="live-timeline" width="{width}" height="56" role="img" aria-label="The last minute">'
    legend = emotion_legend(utterances, colour)
    return f"<div><b>The last minute</b> (hover an utterance for its words)</div>{svg}{''.join(parts)}</svg>{legend}"


def examples() -> list[list]:
    folder = HERE / "examples"
    speech, face = folder / "speech.wav", folder / "face.png"
    rows = [[None, "I can't believe you did this to me, I'm furious!", True, None, None]]
    if speech.is_file() and face.is_file():
        rows.insert(0, [str(speech), "", True, str(face), None])
        rows.append([None, "What a wonderful surprise, thank you so much!", True, str(face), None])
    return rows


def build_demo(demo_model: EmotionDemo, workers: int = 16) -> gr.Blocks:
    architecture = demo_model.model.config.model_type.replace("_", "-").upper()
    with gr.Blocks(title="Multimodal emotion recognition") as page:
        gr.Markdown(f"# Multimodal emotion recognition ({architecture})")
        with gr.Tab("Speak, type, show your face"):
            gr.Markdown(
                "Speak, type and show your face — any of them. The chart shows how much each input moved the decision."
            )
            one_sample(demo_model, workers)
        with gr.Tab("Analyse a recording"):
            recording_tab(demo_model)
        with gr.Tab("Live"):
            live_tab(demo_model, workers)
    return page


def one_sample(demo_model: EmotionDemo, workers: int) -> None:
    """The first tab: one utterance (speech, text, face), its emotion and what each input did."""
    with gr.Row():
        with gr.Column():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech")
            use_speech = gr.Checkbox(value=True, label="Transcribe my speech and use the words")
            text = gr.Textbox(label="Text (left empty: transcribed from the speech)", lines=2)
            with gr.Row():
                image = with_readable_upload_errors(
                    gr.Image(
                        sources=["upload", "webcam"],
                        type="filepath",
                        image_mode=None,  # the path as uploaded: the pipeline decodes it, its size checked first
                        label="Face",
                        elem_id="face-image",
                    ),
                    "Could not read the image: it is not a valid image file.",
                )
                video = gr.Video(sources=["upload", "webcam"], label="Face video")
            button = gr.Button("Recognise emotion", variant="primary")
        with gr.Column():
            label = gr.Label(num_top_classes=len(demo_model.labels), label="Emotion")
            contributions = gr.BarPlot(
                x="input",
                y="contribution",
                y_lim=[-1, 1],
                sort="-y",
                label="What each input did to the decision (change in its probability when left out)",
                elem_id="contributions",
            )
            sentence = gr.Markdown()
            notes = gr.Markdown()
            transcript = gr.Textbox(
                label="Words (typed, or heard in the speech: used where they say something sure)", interactive=False
            )
            per_modality = gr.Dataframe(
                headers=["input", "prediction alone", "confidence"], label="Each input alone", interactive=False
            )
            with gr.Accordion("Details: how much each input listened to the others", open=False):
                gates = gr.Dataframe(
                    headers=["interaction", "gate"],
                    label="Gate values of the fusion (1 = took in all of the other input, 0 = none of it)",
                    interactive=False,
                )
    button.click(
        demo_model.predict,
        [audio, text, use_speech, image, video],
        [label, contributions, sentence, gates, transcript, per_modality, notes],
        api_name="predict",
        concurrency_limit=workers,
    )
    gr.Examples(examples(), [audio, text, use_speech, image, video])


def recording_tab(demo_model: EmotionDemo) -> None:
    """The second tab: a whole recording cut into utterances, its emotion timeline, table and CSV."""
    gr.Markdown(
        "Upload an interview, a meeting or a webcam recording (audio or video, up to "
        f"{MAX_RECORDING_SECONDS / 60:.0f} minutes): it is cut into utterances, each transcribed and read with the "
        "face on screen. Hover over the timeline to see what was said."
    )
    with gr.Row():
        with gr.Column(scale=1):
            recording = with_readable_upload_errors(
                gr.File(label="Recording", file_types=["audio", "video"], type="filepath", elem_id="recording"),
                "Could not read the recording: upload an audio or video file.",
            )
            speakers = gr.Checkbox(value=False, label="Tell the speakers apart (who spoke when, and their faces)")
            button = gr.Button("Analyse the recording", variant="primary")
            summary = gr.Markdown()
            download = gr.File(label="Timeline (CSV)", interactive=False)
        with gr.Column(scale=2):
            timeline = gr.LinePlot(
                x="time (s)",
                y="probability",
                color="emotion",
                y_lim=[0, 1],
                tooltip=["words"],
                label="Each emotion's probability over the recording",
                elem_id="timeline",
            )
    lanes = gr.HTML(visible=False, elem_id="speaker-lanes-box")
    people = gr.Dataframe(label="Each speaker", interactive=False, wrap=True, visible=False)
    table = gr.Dataframe(label="Utterances", interactive=False, wrap=True)
    button.click(
        demo_model.analyze,
        [recording, speakers],
        [timeline, table, download, summary, lanes, people],
        api_name="analyze",
        concurrency_limit=2,  # a recording is long work: two at a time beside the single requests
    )


def live_tab(demo_model: EmotionDemo, workers: int) -> None:
    """The third tab: the microphone and the webcam streamed, the current emotion and the last minute's utterances."""
    gr.Markdown(
        "Talk and make faces: start the microphone, the webcam or both. Each utterance is analysed as soon as it ends "
        "(with your words, when transcription is on, and your face); the blocks below are the last minute."
    )
    session = gr.State(lambda: LiveSession(demo_model), delete_callback=lambda live: live.close())
    with gr.Row():
        with gr.Column(scale=1):
            microphone = gr.Audio(
                sources=["microphone"], streaming=True, type="numpy", label="Microphone", elem_id="live-microphone"
            )
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-camera")
            transcribe = gr.Checkbox(value=True, label="Transcribe my speech and use the words")
        with gr.Column(scale=2):
            current = gr.HTML(current_emotion(None), label="Now")
            inputs = gr.Markdown(elem_id="live-inputs")
            timeline = gr.HTML(live_timeline([], 0.0, demo_model.labels), elem_id="live-timeline-box")
    outputs = [current, inputs, timeline]
    # Every piece of audio is sent, also while the one before is being received; a picture waits for the one before.
    for source, take, trigger in ((microphone, LiveSession.hear, "multiple"), (camera, LiveSession.see, "once")):
        source.stream(
            lambda value, on, live, take=take: take(live, value, on),
            [source, transcribe, session],
            outputs,
            stream_every=0.5,
            concurrency_limit=workers,
            show_progress="hidden",
            trigger_mode=trigger,
        )
    microphone.stop_recording(lambda live: live.stop(), [session], outputs, show_progress="hidden")


def quiet_logs() -> None:
    """One line per rejected request; no weight-loading tables for the encoders' expected unused heads."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "gradio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    transformers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # sizes are checked and refused here


def check_port_free(host: str, port: int) -> None:
    """One line and exit status 2 where another program already listens on the port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            print(
                f"error: cannot serve on {host}:{port} ({error.strerror}): another program uses it; pass --port N "
                "(make demo PORT=N).",
                file=sys.stderr,
            )
            raise SystemExit(2) from None


def main() -> None:
    parser = argparse.ArgumentParser(description="Multimodal emotion recognition demo")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or folder (default: GIA_MIC_MODEL)")
    parser.add_argument("--asr", default=os.environ.get("GIA_MIC_ASR"), help="Whisper for speech-to-text")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--workers", type=int, default=16, help="requests handled at once (the model batches them)")
    parser.add_argument("--max-batch", type=int, default=16, help="most requests in one batch of the model")
    parser.add_argument("--open-browser", action="store_true")
    args = parser.parse_args()
    check_port_free(args.host, args.port)  # before the model loads: said at once
    quiet_logs()
    page = build_demo(EmotionDemo(args.model, args.asr, args.max_batch), args.workers)
    page.queue(default_concurrency_limit=args.workers).launch(
        server_name=args.host, server_port=args.port, inbrowser=args.open_browser, quiet=True
    )


if __name__ == "__main__":
    main()
