"""
`gia-mic analyze RECORDING --model DIR_OR_HUB_ID`: the emotion timeline of a whole recording, streamed segment by
segment, with one progress bar per stage, one line per segment, and `timeline.csv` / `.json` / `.png` written.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm
from transformers import pipeline
from transformers.utils import logging as transformers_logging

from modeling_gia_mic import TASK, MultimodalEmotionRecognitionPipeline
from modeling_gia_mic.pipeline_gia_mic import language_code
from modeling_gia_mic.recording_gia_mic import probe
from modeling_gia_mic.speakers_gia_mic import DiarizationOptions

from .folders import check_model_source, claim_output, write_folder
from .timeline import FILES, SPEAKERS_FILE, speaker_lines, summary_line, write_timeline


COMMAND = "gia-mic analyze"


def load_pipeline(model: str, asr: str | None = None, language: str | None = None, device=None):
    """The pipeline of this package over a model folder or Hub id (its own remote code builds the model)."""
    transformers_logging.set_verbosity_error()  # Whisper's generation notices, unused encoder heads
    transformers_logging.disable_progress_bar()
    return pipeline(
        TASK,
        model=model,
        trust_remote_code=True,
        pipeline_class=MultimodalEmotionRecognitionPipeline,
        asr=asr,
        language=language,
        device=device,
    )


class StageBars:
    """One tqdm bar per stage, named `[k/n] stage`, opened when the stage first reports (closing the one before)."""

    def __init__(self, stages: tuple[str, ...]):
        self.stages = stages
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, done: float, total: float | None) -> None:
        if stage != self.stage:
            self.close()
            seconds = stage == self.stages[0]
            self.stage, self.bar = (
                stage,
                tqdm(
                    total=total,
                    desc=f"[{self.stages.index(stage) + 1}/{len(self.stages)}] {stage}",
                    unit="s" if seconds else "segment",
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}]"
                    if seconds and total
                    else None,
                ),
            )
        self.bar.update((min(done, self.bar.total) if self.bar.total else done) - self.bar.n)  # redrawn <= 10/s

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass(frozen=True)
class AnalysisSettings:
    """What `gia-mic analyze` runs on each recording: the model, the speech recogniser, and what it finds."""

    model: str
    asr: str | None = None
    language: str | None = None
    transcribe: bool = True
    speakers: DiarizationOptions | None = None

    def record(self) -> dict:
        """
        The settings as a timeline records them (JSON), so that a later run with other settings analyses again: a
        local model or recogniser by its absolute path, the language by its code.
        """
        recorded = dataclasses.asdict(self)
        for name in ("model", "asr"):
            if recorded[name] is not None and Path(recorded[name]).exists():
                recorded[name] = str(Path(recorded[name]).resolve())
        recorded["language"] = language_code(self.language)
        return json.loads(json.dumps(recorded))

    def stages(self, classifier, info) -> tuple[str, ...]:
        return classifier.analysis_stages(info, self.speakers)

    def pipeline(self, device=None):
        """The pipeline, with the speaker encoder loaded now when speakers are asked for, and the speech recogniser
        when a language is (a missing encoder or a language the recogniser cannot take is said before any recording
        is read)."""
        classifier = load_pipeline(self.model, self.asr, self.language, device)
        if self.speakers is not None:
            classifier.speaker_encoder()
        if self.language is not None and self.transcribe:
            classifier.speech_recognizer  # noqa: B018  (loaded now, checking the language)
        return classifier

    def run(self, classifier, info, progress):
        return classifier.analyze(info, transcribe=self.transcribe, progress=progress, speakers=self.speakers)


def analyze(
    recording: Path, settings: AnalysisSettings, output: Path | None = None, overwrite: bool = False
) -> tuple[Path, dict]:
    output = output or Path(f"{recording.stem}-emotions")
    claim_output(
        output, COMMAND, {"recording": recording, "--model": settings.model, "--asr": settings.asr}, overwrite
    )
    for source, option in ((settings.model, "--model"), (settings.asr, "--asr")):
        if source is not None:
            check_model_source(source, option)
    info = probe(recording)  # before the model loads: a file that cannot be analysed is said at once
    classifier = settings.pipeline()
    bars = StageBars(settings.stages(classifier, info))
    try:
        analysis = settings.run(classifier, info, bars)
        segments = []
        for segment in analysis.segments:
            segments.append(segment)
            tqdm.write(summary_line(segment))
    finally:
        bars.close()
    for note in analysis.notes:
        print(note)
    timeline = analysis.timeline(segments)
    for line in speaker_lines(timeline.get("speakers", [])):
        print(line)
    write_folder(
        output,
        lambda folder: write_timeline(timeline, classifier.labels, folder, recording.name),
        command=COMMAND,
        overwrite=overwrite,
    )
    return output, timeline


def summary(output: Path, timeline: dict) -> str:
    files = [*FILES, SPEAKERS_FILE] if "speakers" in timeline else FILES
    return f"Wrote {len(timeline['segments'])} segments to {', '.join(str(output / name) for name in files)}"
