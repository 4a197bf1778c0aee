"""
`pipeline("multimodal-emotion-recognition", model=REPO_OR_DIR, trust_remote_code=True)`: the emotion of one sample
(any of text, speech, a face image or a face video), or an emotion timeline of a whole recording.

    classifier = pipeline("multimodal-emotion-recognition", model="runs/iemocap", trust_remote_code=True)
    classifier({"text": "I can't believe it!", "audio": "clip.wav", "image": "face.jpg"})
    # [{"label": "angry", "score": 0.71}, {"label": "happy", "score": 0.12}, ...]
    classifier("interview.mp4")
    # {"duration": 613.2, "segments": [{"start": 3.1, "end": 7.9, "text": "...", "label": "neutral", ...}], ...}

Speech is transcribed with the Whisper model in the model folder's `asr/` (or `asr=`) when no text is given, and
the words are used where their own answer is sure (at least the model's `uncertain_below`); a recording is cut into
utterances by Silero VAD (the folder's `vad/`, or the installed `silero-vad` package).
Remote code: torch and transformers; PyAV reads media files, dlib finds faces when the processor detects them.
"""

import copy
import os
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from itertools import count, islice
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoTokenizer, BatchFeature, Pipeline
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator
from transformers.utils import cached_file, logging

from .audio_gia_mic import SAMPLING_RATE, read_audio
from .faces_gia_mic import FaceDetector, detection_copy
from .identities_gia_mic import UtteranceFace, find_faces, rectangle
from .live_gia_mic import Analyse, LiveAnalysis, LiveOptions
from .processing_gia_mic import (
    NoFaceFoundError,
    as_float_waveform,
    check_sampling_rate,
    check_waveform,
    cut_to_faces,
    open_image,
    read_video_frames,
    resample,
)
from .recording_gia_mic import (
    MediaInfo,
    RecordingError,
    SegmentationOptions,
    SegmentMedia,
    VoiceActivityDetector,
    cut_segments,
    find_speech,
    probe,
    truncation_note,
    windows,
)
from .speakers_gia_mic import (
    DiarizationOptions,
    SpeakerEncoder,
    diarization_options,
    diarize_recording,
    speaker_names,
    speaker_summary,
)


TASK = "multimodal-emotion-recognition"
ASR_FOLDER = "asr"
INPUT_KEYS = ("text", "audio", "sampling_rate", "image", "video")
# One sample's speech: long enough to hold a syllable, short enough to be one utterance (a longer recording is given
# as a path, for a timeline). `max_seconds` lowers the limit.
MIN_SAMPLE_SECONDS, MAX_SAMPLE_SECONDS = 0.1, 60.0
NAMES = {"text": "text", "audio": "speech", "vision": "face"}
StageProgress = Callable[[str, float, float | None], None]  # (stage, done, total)


@dataclass
class EmotionInputs:
    """One sample's decoded inputs: the words, the 16 kHz waveform, the face frames, and notes for the reader."""

    text: str | None = None
    waveform: np.ndarray | None = None
    faces: list | None = None
    notes: list[str] = field(default_factory=list)
    heard: str | None = None  # words transcribed but left out of the model's inputs (`keep_sure_words`)
    language: str | None = None  # of the words transcribed

    @property
    def words(self) -> str | None:
        """The words of the sample: given, or heard (used or not)."""
        return self.text if self.text is not None else self.heard

    @property
    def modalities(self) -> tuple[str, ...]:
        given = {"text": self.text, "audio": self.waveform, "vision": self.faces}
        return tuple(m for m, value in given.items() if value is not None)


@dataclass
class RecordingAnalysis:
    """A recording whose speech has been found: its length, notes, and its segments' results as they are made."""

    name: str
    duration: float
    notes: list[str]
    segments: Iterator[dict]
    labels: list[str]

    def timeline(self, segments: list[dict]) -> dict:
        """What the pipeline returns for a recording, once its segments are in (with speakers: each one's summary)."""
        found = {"duration": self.duration, "notes": self.notes, "segments": segments}
        if any("speaker" in segment for segment in segments):
            found["speakers"] = speaker_summary(segments, self.labels)
        return found


@dataclass
class EmotionPrediction:
    """
    The fused class probabilities and gates of a sample, each of its inputs' probabilities alone, and (for an
    explanation) the probabilities without each input.
    """

    probabilities: np.ndarray
    gates: np.ndarray
    alone: dict[str, np.ndarray]
    without: dict[str, np.ndarray] | None = None


class Transcript(NamedTuple):
    """A clip's words and the language they were heard in (an ISO 639-1 code such as "en")."""

    words: str
    language: str


def language_code(language: str | None) -> str | None:
    """A language as Whisper's code ("french", "French" and "fr" are "fr"); None, or "auto", is None: found."""
    if language is None or language.lower() == "auto":
        return None
    return TO_LANGUAGE_CODE.get(language.lower(), language.lower())


class SpeechRecognizer:
    """
    A Whisper model transcribing 16 kHz clips of up to 30 s, `batch_size` at a time: its encoder attends over the
    whole 30-s window, so 8 clips at once hold about 400 MB of attention weights; 2 at once are as fast on a CPU and
    keep the memory of a long recording's analysis low and flat (BENCHMARKS.md). Each clip's language is the one given,
    English for an English-only model, else the one the model finds in it (`language="auto"` or None).
    """

    def __init__(
        self,
        model,
        feature_extractor,
        tokenizer,
        language: str | None = None,
        batch_size: int = 2,
        bfloat16: bool = False,
    ):
        """
        `bfloat16`: run the encoder's matrix products in bfloat16 (autocast; the weights, layer norms and softmax stay
        float32, and so does the decoder): recognition twice as fast on CPUs with native bfloat16
        (`native_bfloat16()`), the same words on 375 of 376 RAVDESS and demo clips (BENCHMARKS.md); on other CPUs it
        is emulated and slower.
        """
        self.model, self.feature_extractor, self.tokenizer = model.eval(), feature_extractor, tokenizer
        self.model.generation_config.max_new_tokens = 120  # a clip's words
        self.language, self.batch_size, self.bfloat16 = self.known_language(language), batch_size, bfloat16

    @classmethod
    def from_pretrained(cls, name_or_path: str, subfolder: str = "", **settings):
        """`settings`: `language`, `batch_size`, `bfloat16` (see `__init__`)."""
        parts = [
            auto.from_pretrained(name_or_path, subfolder=subfolder)
            for auto in (AutoModelForSpeechSeq2Seq, AutoFeatureExtractor, AutoTokenizer)
        ]
        return cls(*parts, **settings)

    @property
    def multilingual(self) -> bool:
        return bool(getattr(self.model.generation_config, "is_multilingual", False))

    def known_language(self, language: str | None) -> str | None:
        """The language as a code (`language_code`), checked against what the recogniser can take."""
        code = language_code(language)
        if code is None:
            if language is not None and not self.multilingual:
                raise ValueError(
                    "The speech recogniser is English-only; finding the language needs a multilingual Whisper "
                    "(`gia-mic convert-whisper --size base`)."
                )
            return None
        if not self.multilingual:
            if code != "en":
                raise ValueError(
                    f"The speech recogniser is English-only; it cannot transcribe language {language!r} (a "
                    "multilingual Whisper can: `gia-mic convert-whisper --size base`)."
                )
            return code
        if f"<|{code}|>" not in self.model.generation_config.lang_to_id:
            raise ValueError(f"The speech recogniser knows no language {language!r}; give a code such as en, fr, de.")
        return code

    def __call__(self, waveforms: list[np.ndarray]) -> list[Transcript]:
        batches = [waveforms[start : start + self.batch_size] for start in range(0, len(waveforms), self.batch_size)]
        return [transcript for batch in batches for transcript in self.transcribe(batch)]

    def transcribe(self, waveforms: list[np.ndarray]) -> list[Transcript]:
        features = self.feature_extractor(waveforms, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        autocast = torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=self.bfloat16)
        with torch.inference_mode():
            with autocast:  # the encoder's 1,500 steps; the decoder's small steps would pay for the casts instead
                encoded = self.model.get_encoder()(features.input_features.to(self.model.device))
            encoded = BaseModelOutput(last_hidden_state=encoded.last_hidden_state.float())
            languages = self.languages(encoded, len(waveforms))
            told = {"language": languages, "task": "transcribe"} if self.multilingual else {}
            ids = quietly(self.model.generate, encoder_outputs=encoded, **told)
        words = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [Transcript(text.strip(), language) for text, language in zip(words, languages)]

    def languages(self, encoded: BaseModelOutput, count: int) -> list[str]:
        """Each clip's language: the one given, English for an English-only model, else the one Whisper finds."""
        if self.language is not None or not self.multilingual:
            return [self.language or "en"] * count
        found = quietly(self.model.detect_language, encoder_outputs=encoded)
        return [token[2:-2] for token in self.tokenizer.convert_ids_to_tokens(found.tolist())]


def quietly(function: Callable, *args, **kwargs):
    """
    `function` with transformers' warnings held back: Whisper's `generate` warns on every call of its own defaults
    (its `max_length` beside our `max_new_tokens`, its suppressed tokens, a batch's decoder mask), none of which the
    user set or can act on.
    """
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return function(*args, **kwargs)
    finally:
        logging.set_verbosity(verbosity)


def face_id(face: UtteranceFace | None) -> str | None:
    """The identity an utterance reads (None where its frames were not in the face pass: a file cut short)."""
    return face.face_id if face is not None else None


def chosen_faces(frames: list[np.ndarray], face: UtteranceFace, notes: list[str]) -> list[np.ndarray] | None:
    """The chosen face cut from each frame it is in view in; None, and a note, where it is in none."""
    detector = FaceDetector.load()
    crops = [
        detector.chip(detection_copy(frames[index]), rectangle(box))
        for index, box in face.boxes.items()
        if index < len(frames)
    ]
    if face.note is not None:
        notes.append(face.note)
    if not crops and face.note is None:
        notes.append("No face was found in the video: the face input was left out.")
    return crops or None


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX, AVX512-BF16), where `SpeechRecognizer(bfloat16=True)` pays."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch's own CPU feature checks
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def model_subfolder_file(name_or_path: str, subfolder: str, filename: str) -> str | None:
    """A file in a subfolder of a model folder or Hub repo, or None where it has none."""
    if not name_or_path:
        return None
    return cached_file(name_or_path, filename, subfolder=subfolder, _raise_exceptions_for_missing_entries=False)


def read_clip(path: str | os.PathLike, max_seconds: float = MAX_SAMPLE_SECONDS) -> np.ndarray:
    """
    A whole audio file as 16 kHz mono float32 (`read_audio`); a short clip, not a recording: a file over
    `max_seconds` is refused from its header, or as soon as its decoding passes the limit.
    """
    info = probe(path, max_seconds)
    if not info.has_audio:
        raise ValueError(f"{info.name} has no audio track.")
    return read_audio(path, max_seconds)


def read_image(image):
    """A path is opened (its size checked before decoding); an image or array given is taken as it is."""
    return open_image(image) if isinstance(image, str | os.PathLike) else image


class MultimodalEmotionRecognitionPipeline(Pipeline):
    """
    Emotion recognition with a GIA-MIC, MCIHN or MIAR model.

    Call it with a dict of any of `text` (str), `audio` (a file path, or a 1-D array with `sampling_rate`), `image`
    (a path, PIL image or array) and `video` (a path): it returns `[{"label", "score"}, ...]`, best first, the first
    with `"uncertain"` (True where its probability is under the model's `uncertain_below`: "not sure"). Call it with
    the path of a recording (audio or video, any length): it returns `{"duration", "segments", "notes"}`, one segment
    per utterance with its span, words, label, class probabilities, each input's own prediction and the gates. A list,
    generator, dataset or `KeyDataset` of either gives one such result per item (a list for a list, an iterator
    otherwise); `batch_size=N` runs the models on N items at a time.

    Args:
        asr: A Whisper model folder or Hub id (or a `SpeechRecognizer`) for speech-to-text; default: the model's
            `asr/` subfolder where it has one.
        vad: A folder or Hub id with `vad/silero_vad.jit`; default: the model's own, else the `silero-vad` package.
        segmentation: `SegmentationOptions` for recordings.
        language: The language spoken ("fr" or "french"), or "auto" to find each utterance's (a multilingual speech
            recogniser: `gia-mic convert-whisper --size base`); default: English for an English-only recogniser, each
            utterance's own for a multilingual one. Each transcribed answer records its `language`.
        asr_batch_size: Clips the speech recogniser transcribes at once (2: as fast on a CPU, little memory).
        asr_bfloat16: Run the recogniser's encoder in bfloat16: True, False, or "auto" (where the CPU computes it
            natively, `native_bfloat16()`: twice as fast, the same words).

    Per call: `top_k` (labels kept), `transcribe` (False: speech without words), `max_seconds` (a limit on the
    speech or recording), `progress` (a `(stage, done, total)` callback for a recording) and `explain`: True gives,
    for a sample, `{"label", "score", "uncertain", "scores", "text", "inputs", "contributions", "gates", "notes"}`: the
    prediction, the words used, each input's own prediction, each input's contribution (the top label's probability
    with every input minus without that one; one input alone: minus the uniform guess) and each gate.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False

    def __init__(
        self,
        *args,
        asr=None,
        vad=None,
        segmentation: SegmentationOptions | None = None,
        language: str | None = None,
        asr_batch_size: int = 2,
        asr_bfloat16: bool | str = False,
        **kwargs,
    ):
        if asr_bfloat16 not in (True, False, "auto"):
            raise ValueError(f'`asr_bfloat16` takes True, False or "auto"; got {asr_bfloat16!r}.')
        if isinstance(asr_batch_size, bool) or not isinstance(asr_batch_size, int) or asr_batch_size < 1:
            raise ValueError(f"`asr_batch_size` must be a whole number of clips, 1 or more; got {asr_batch_size!r}.")
        self.asr_source, self.vad_source, self.language = asr, vad, language
        bfloat16 = native_bfloat16() if asr_bfloat16 == "auto" else asr_bfloat16
        self.asr_settings = {"language": language, "batch_size": asr_batch_size, "bfloat16": bfloat16}
        self.segmentation = segmentation or SegmentationOptions()
        self._speech_recognizer: SpeechRecognizer | None | bool = None
        self._speaker_encoder: SpeakerEncoder | None = None
        super().__init__(*args, **kwargs)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.batch_processor = copy.copy(self.processor)  # faces are cut per sample, before batching
        self.batch_processor.detect_faces = False

    def _sanitize_parameters(
        self, top_k=None, transcribe=None, max_seconds=None, progress=None, explain=None, speakers=None, **kwargs
    ):
        if kwargs:
            raise TypeError(f"Unknown arguments for the {TASK} pipeline: {', '.join(kwargs)}.")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"`top_k` must be a whole number of labels, 1 or more; got {top_k!r}.")
        number = isinstance(max_seconds, int | float) and not isinstance(max_seconds, bool)
        if max_seconds is not None and not (number and max_seconds > 0):
            raise ValueError(f"`max_seconds` must be a positive number of seconds; got {max_seconds!r}.")
        for name, flag in (("transcribe", transcribe), ("explain", explain)):
            if flag is not None and not isinstance(flag, bool):
                raise ValueError(f"`{name}` takes True or False; got {flag!r}.")
        preprocess = {"max_seconds": max_seconds} if max_seconds is not None else {}
        given = {"transcribe": transcribe, "progress": progress, "explain": explain}
        forward = {name: value for name, value in given.items() if value is not None}
        if speakers is not None:  # False too: it turns off speakers set when the pipeline was made
            forward["speakers"] = diarization_options(speakers)
        postprocess = {
            name: value for name, value in {"top_k": top_k, "explain": explain}.items() if value is not None
        }
        return preprocess, forward, postprocess

    # --- loading the helpers -----------------------------------------------------------------------------------

    @property
    def speech_recognizer(self) -> SpeechRecognizer | None:
        """Whisper from `asr=` or the model's `asr/` subfolder, loaded on first use; None where there is none."""
        if self._speech_recognizer is None:
            source = self.asr_source
            if isinstance(source, SpeechRecognizer):
                self._speech_recognizer = source
            elif source is not None:
                self._speech_recognizer = SpeechRecognizer.from_pretrained(str(source), **self.asr_settings)
            elif model_subfolder_file(self.model.name_or_path, ASR_FOLDER, "config.json"):
                self._speech_recognizer = SpeechRecognizer.from_pretrained(
                    self.model.name_or_path, subfolder=ASR_FOLDER, **self.asr_settings
                )
            else:
                self._speech_recognizer = False
        return self._speech_recognizer or None

    def voice_activity_detector(self) -> VoiceActivityDetector:
        """A fresh detector for each recording: it keeps the state of the stream it reads."""
        source = self.vad_source or self.model.name_or_path
        return VoiceActivityDetector.from_pretrained(source or None)

    # --- one sample --------------------------------------------------------------------------------------------

    def preprocess(self, inputs, max_seconds: float | None = None):
        if isinstance(inputs, str | os.PathLike):
            return probe(inputs, max_seconds)
        if not isinstance(inputs, dict):
            raise TypeError(
                f"The {TASK} pipeline takes a dict of {', '.join(INPUT_KEYS)} or the path of a recording; "
                f"got {type(inputs).__name__}."
            )
        unknown = sorted(set(inputs) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"Unknown inputs {unknown}; expected any of {', '.join(INPUT_KEYS)}.")
        return self.prepare(**inputs, max_seconds=min(max_seconds or MAX_SAMPLE_SECONDS, MAX_SAMPLE_SECONDS))

    def prepare(
        self, text=None, audio=None, sampling_rate=None, image=None, video=None, max_seconds=MAX_SAMPLE_SECONDS
    ) -> EmotionInputs:
        """
        Decode and check one sample's inputs, before any model runs (speech of at most `max_seconds`, every sample
        finite); faces are cut out where the processor detects faces.
        """
        if image is not None and video is not None:
            raise ValueError("Give the face either as an `image` or as a `video`, not both.")
        if text is not None and not isinstance(text, str):
            raise ValueError(f"`text` must be a string; got {type(text).__name__}.")
        if video is not None and not isinstance(video, str | os.PathLike):
            raise ValueError(f"`video` must be the path of a video file; got {type(video).__name__}.")
        if sampling_rate is not None and (audio is None or isinstance(audio, str | os.PathLike)):
            raise ValueError("`sampling_rate` goes with `audio` given as an array; a file gives its own rate.")
        sample = EmotionInputs(text=(text or "").strip() or None)
        if audio is not None:
            if isinstance(audio, str | os.PathLike):
                sample.waveform = read_clip(audio, max_seconds)
            else:
                if not isinstance(audio, np.ndarray | torch.Tensor | list | tuple):
                    raise ValueError(f"`audio` must be a file path or a 1-D waveform; got {type(audio).__name__}.")
                rate = check_sampling_rate(sampling_rate)
                waveform = as_float_waveform(audio, 0)
                check_waveform(waveform, "`audio`", rate, max_seconds)
                sample.waveform = resample(waveform, rate, SAMPLING_RATE)
            if sample.waveform.size < MIN_SAMPLE_SECONDS * SAMPLING_RATE:
                raise ValueError(f"The speech is shorter than {MIN_SAMPLE_SECONDS:g} s; give at least a syllable.")
            if not np.abs(sample.waveform).max() > 0:
                raise ValueError("The audio is silent; record at least a short sentence.")
        if image is not None or video is not None:
            frames = [read_image(image)] if image is not None else read_video_frames(video, self.processor.num_frames)
            sample.faces = self.faces(frames, sample.notes, "image" if image is not None else "video")
        if not sample.modalities and not sample.notes:
            raise ValueError("Nothing to recognise: give any of text, audio, image or video.")
        return sample

    def faces(self, frames: list, notes: list[str], source: str = "video") -> list | None:
        """
        The frames cut to the face where the processor detects faces; None, and a note naming the `source` (image,
        video), where none is found.
        """
        if not self.processor.detect_faces:
            return frames
        try:
            return cut_to_faces([frames])[0]
        except NoFaceFoundError:
            notes.append(f"No face was found in the {source}: the face input was left out.")
            return None

    def get_iterator(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ):
        """
        Lists, generators, datasets and `KeyDataset`s: each item decoded by `preprocess` (in `num_workers` processes
        where asked), the models run on `batch_size` decoded items at a time (the speech recogniser and the emotion
        model each in one batch), each result formatted by `postprocess`.
        """
        if isinstance(inputs, Sized):
            items = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            items, num_workers = PipelineIterator(inputs, self.preprocess, preprocess_params), min(num_workers, 1)
        batches = DataLoader(items, num_workers=num_workers, batch_size=batch_size, collate_fn=list)
        results = (result for batch in batches for result in self.forward(batch, **forward_params))
        return PipelineIterator(results, self.postprocess, postprocess_params)

    def _forward(
        self,
        model_inputs,
        transcribe: bool = True,
        progress: StageProgress | None = None,
        explain: bool = False,
        speakers: DiarizationOptions | None = None,
    ):
        """One decoded item, or a list of them (from `get_iterator`): a list gives a list of outputs."""
        batch = model_inputs if isinstance(model_inputs, list) else [model_inputs]
        samples = [item for item in batch if isinstance(item, EmotionInputs)]
        if transcribe:
            self.transcribe(samples)
        else:
            self.note_untranscribed(samples)
        predictions = iter(self.predict(samples, explain))
        outputs = [
            self.timeline(item, transcribe, progress, speakers)
            if isinstance(item, MediaInfo)
            else (item, next(predictions))
            for item in batch
        ]
        return outputs if isinstance(model_inputs, list) else outputs[0]

    def timeline(
        self,
        recording: MediaInfo,
        transcribe: bool,
        progress: StageProgress | None,
        speakers: DiarizationOptions | None,
    ) -> dict:
        analysis = self.analyze(recording, transcribe=transcribe, progress=progress, speakers=speakers)
        return analysis.timeline(list(analysis.segments))

    def postprocess(self, model_outputs, top_k: int | None = None, explain: bool = False):
        if isinstance(model_outputs, dict):  # a recording's timeline
            return model_outputs
        sample, prediction = model_outputs
        if prediction is None:
            raise ValueError(" ".join(sample.notes) or "Nothing to recognise.")
        if explain:
            return self.result(sample, prediction)
        ranked = sorted(zip(self.labels, prediction.probabilities.tolist()), key=lambda pair: -pair[1])
        answers = [{"label": label, "score": score} for label, score in ranked[:top_k]]
        answers[0]["uncertain"] = self.uncertain(prediction.probabilities)
        return answers

    def uncertain(self, probabilities: np.ndarray) -> bool:
        """Whether the answer is "not sure": its top probability under the model's `uncertain_below`."""
        threshold = self.model.config.uncertain_below
        return threshold is not None and float(probabilities.max()) < threshold

    # --- the model, batched ------------------------------------------------------------------------------------

    def note_untranscribed(self, samples: list[EmotionInputs]) -> None:
        """With `transcribe=False`: a model that reads text is told nothing of the words of speech without text."""
        if "text" in self.model.config.modalities:
            for sample in (s for s in samples if s.text is None and s.waveform is not None):
                sample.notes.append("Speech alone: the words were not transcribed or used.")

    def transcribe(self, samples: list[EmotionInputs]) -> None:
        """Words for the samples that have speech and no text, where the model reads text and has a recogniser."""
        if "text" not in self.model.config.modalities:
            return
        wanting = [s for s in samples if s.text is None and s.waveform is not None]
        if not wanting or self.speech_recognizer is None:
            return
        for sample, (words, language) in zip(wanting, self.speech_recognizer([s.waveform for s in wanting])):
            sample.text, sample.language = words or None, language if words else None
            sample.notes.append("The words were transcribed from the speech." if words else "No words were heard.")
        self.keep_sure_words([s for s in wanting if s.text is not None])

    def keep_sure_words(self, samples: list[EmotionInputs]) -> None:
        """
        Transcribed words reach the model only where their own answer is sure (its top probability at least the
        model's `uncertain_below`): words that say nothing sure about the emotion, as most sentences of a conversation,
        do not overrule the voice and the face. They stay in the answer's `text`, and a note says so.
        """
        samples = [s for s in samples if set(self.used_modalities(s)) - {"text"}]  # words alone stay the answer's
        if self.model.config.uncertain_below is None or not samples:
            return
        for sample, alone in zip(samples, self.predict([EmotionInputs(text=s.text) for s in samples])):
            if self.uncertain(alone.probabilities):
                top = int(alone.probabilities.argmax())
                sample.heard, sample.text = sample.text, None
                sample.notes.append(
                    f"The words say nothing sure about the emotion (alone: {self.labels[top]} "
                    f"{alone.probabilities[top]:.2f}), so they were left out."
                )

    def encode(
        self, samples: list[EmotionInputs], modalities: tuple[str, ...]
    ) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """The encoders of `modalities` over samples that all have them, in one batch; each sample's sequences."""
        batch = self.model_inputs(samples, modalities).to(self.device)
        with torch.inference_mode():
            encoded = self.model.base_model.get_modality_features(**batch)
        return [
            {
                m: (f[i : i + 1, : int(mask[i].sum())], mask[i : i + 1, : int(mask[i].sum())])
                for m, (f, mask) in encoded.items()
            }
            for i in range(len(samples))
        ]

    def model_inputs(self, samples: list[EmotionInputs], modalities: tuple[str, ...]) -> BatchFeature:
        """The processor's batch of the samples' `modalities` (their faces already cut out): what the model reads."""
        kwargs = {}
        if "text" in modalities:
            kwargs["text"] = [s.text for s in samples]
        if "audio" in modalities:
            kwargs.update(audio=[s.waveform for s in samples], sampling_rate=SAMPLING_RATE)
        if "vision" in modalities:
            kwargs["images"] = [s.faces for s in samples]
        return self.batch_processor(**kwargs)

    def fuse(self, encoded: list[dict], modalities: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
        """
        Each sample's class probabilities and gate values from the fusion of some of its encoded inputs, the samples
        in one batch (their sequences padded and masked).
        """
        inputs = {}
        for m in modalities:
            for part, name in enumerate((f"{m}_features", f"{m}_feature_mask")):
                pieces = [sample[m][part][0] for sample in encoded]  # each sample's real length
                inputs[name] = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True)
        with torch.inference_mode():
            output = self.model(**inputs)
        probabilities = output.logits.float().softmax(-1).cpu().numpy()
        return list(zip(probabilities, output.gate_values.float().cpu().numpy()))

    def predict(self, samples: list[EmotionInputs], explain: bool = False) -> list[EmotionPrediction | None]:
        """
        Each sample's prediction from the inputs it has that the model reads (None where that leaves nothing), the
        samples with the same inputs in one batch; with `explain`, also without each input.
        """
        groups: dict[tuple, list[int]] = {}
        for index, sample in enumerate(samples):
            used = self.used_modalities(sample)
            if used:
                groups.setdefault(used, []).append(index)
        predictions: list[EmotionPrediction | None] = [None] * len(samples)
        for modalities, indices in groups.items():
            encoded = self.encode([samples[i] for i in indices], modalities)
            for index, prediction in zip(indices, self.predictions(encoded, modalities, explain)):
                predictions[index] = prediction
        return predictions

    def predictions(
        self, encoded: list[dict], modalities: tuple[str, ...], explain: bool = False
    ) -> list[EmotionPrediction]:
        """
        Samples' fused predictions from their encoded inputs, each input's own (the fusion of it alone) and, with
        `explain`, the fusion of the others without each input (none left: the uniform guess of no model).
        """
        fused = self.fuse(encoded, modalities)
        alone = {m: self.fuse(encoded, (m,)) for m in modalities} if len(modalities) > 1 else {modalities[0]: fused}
        fusions = {**{(m,): alone[m] for m in modalities}, modalities: fused}
        uniform = [(np.full(len(self.labels), 1 / len(self.labels)), None)] * len(encoded)
        without = {}
        for m in modalities if explain else ():
            rest = tuple(other for other in modalities if other != m)
            without[m] = fusions.get(rest) or (self.fuse(encoded, rest) if rest else uniform)
        return [
            EmotionPrediction(
                probabilities,
                gates,
                {m: alone[m][index][0] for m in modalities},
                {m: without[m][index][0] for m in without} if explain else None,
            )
            for index, (probabilities, gates) in enumerate(fused)
        ]

    def used_modalities(self, sample: EmotionInputs) -> tuple[str, ...]:
        return tuple(m for m in sample.modalities if m in self.model.config.modalities)

    # --- a recording -------------------------------------------------------------------------------------------

    def analyze(
        self,
        recording: str | os.PathLike | MediaInfo,
        transcribe: bool = True,
        max_seconds: float | None = None,
        progress: StageProgress | None = None,
        batch_size: int = 8,
        speakers: DiarizationOptions | bool | int | dict | None = None,
    ) -> "RecordingAnalysis":
        """
        A recording's utterances: speech is found by the voice-activity detector here (a video without an audio
        track: faces in fixed windows); the returned `segments` then give each utterance, in order, as soon as it is
        analysed: words transcribed, faces cut from the frames on screen, the model run on `batch_size` utterances
        at a time. The recording is streamed, never held whole. With `speakers`, the utterances are also cut where
        the speaker changes and each names its speaker (`SPEAKER_00`, ... in order of first appearance).
        """
        info = recording if isinstance(recording, MediaInfo) else probe(recording, max_seconds)
        notes, names, faces, speakers = [], None, None, diarization_options(speakers)
        report = progress or (lambda stage, done, total: None)
        modalities = self.model.config.modalities
        if info.has_audio:
            spans, duration = find_speech(
                info,
                self.voice_activity_detector(),
                self.segmentation,
                max_seconds,
                lambda seconds: report("Finding speech", seconds, info.duration),
                notes,
            )
            if not notes:  # a decoding that stopped says where already
                notes.extend(truncation_note(info, duration))
            if not spans:
                notes.append(f"No speech was found in {info.name}: the timeline is empty.")
            elif speakers is not None:
                report("Telling speakers apart", 0, 1)
                turns = diarize_recording(info.path, spans, self.speaker_encoder(), speakers)
                report("Telling speakers apart", 1, 1)
                spans = [(start, end) for start, end, _ in turns]
                called = speaker_names(turns, speakers.names)
                names = {start: called[speaker] for start, _, speaker in turns}
                if self.reads_faces(info):
                    faces = self.faces_of_speakers(info, turns, called, speakers.face, report)
                if len(speakers.names) > len(called):
                    notes.append(f"{len(speakers.names)} speaker names were given; {len(called)} speakers were heard.")
                if speakers.num_speakers and len(called) < speakers.num_speakers:
                    notes.append(
                        f"{speakers.num_speakers} speakers were asked for; {info.name} has speech enough to tell "
                        f"{len(called)} apart."
                    )
        elif "vision" in modalities:
            duration = info.duration or 0.0
            spans = windows(duration, self.segmentation.window_s)
            notes.append(
                f"{info.name} has no audio track: faces only, in {self.segmentation.window_s:g}-second windows."
            )
            if speakers is not None:
                notes.append(f"{info.name} has no audio track: its speakers cannot be told apart.")
        else:
            raise RecordingError(f"{info.name} has no audio track, and this model reads no faces.")
        media = cut_segments(
            info,
            spans,
            self.processor.num_frames,
            audio=bool({"audio", "text"} & set(modalities)),
            video="vision" in modalities,
            notes=notes,
        )
        segments = self.analyze_segments(media, len(spans), transcribe, report, batch_size, faces)
        if names is not None:
            segments = ({**result, "speaker": names[result["start"]]} for result in segments)
        if faces is not None:
            segments = ({**result, "face_id": face_id(faces.get(result["start"]))} for result in segments)
        return RecordingAnalysis(info.name, duration, notes, segments, self.labels)

    def live(
        self, transcribe: bool = True, options: LiveOptions | None = None, analyse: Analyse | None = None
    ) -> LiveAnalysis:
        """
        A live stream's analysis: `feed(audio=..., sampling_rate=..., frames=[(time, picture), ...])` as they come,
        then `finish()`; each call gives the utterances settled since the last one, the current emotion (the utterance
        that just ended, analysed early) and the timeline of the last minute. A recording fed piece by piece gives the
        utterances and labels `analyze` gives for it (`live_gia_mic`).
        """
        return LiveAnalysis(self, transcribe, options or LiveOptions(), analyse)

    def reads_faces(self, info: MediaInfo) -> bool:
        """Whether a recording's faces are cut out for the model: it has pictures, the model reads faces and its
        processor detects them."""
        return info.has_video and "vision" in self.model.config.modalities and self.processor.detect_faces

    def analysis_stages(self, info: MediaInfo, speakers: DiarizationOptions | None) -> tuple[str, ...]:
        """The stages `analyze` reports, in order."""
        if speakers is None or not info.has_audio:
            return ("Finding speech", "Analysing segments")
        faces = ("Finding faces",) if self.reads_faces(info) else ()
        return ("Finding speech", "Telling speakers apart", *faces, "Analysing segments")

    def faces_of_speakers(
        self, info: MediaInfo, turns: list[tuple[float, float, int]], names: dict[int, str], choice: str, report
    ) -> dict[float, UtteranceFace]:
        """
        A pass over the pictures before the utterances are read: each utterance's face (its speaker's, or the
        largest) from the faces in view at the frames it will read, tracked and told apart (`identities_gia_mic`).
        """
        spans = [(start, end) for start, end, _ in turns]
        done = count(1)
        report("Finding faces", 0, len(spans))
        view = find_faces(
            cut_segments(info, spans, self.processor.num_frames, audio=False, video=True, notes=[]),
            progress=lambda: report("Finding faces", next(done), len(spans)),
        )
        return view.choose({start: speaker for start, _, speaker in turns}, names, choice)

    def speaker_encoder(self) -> SpeakerEncoder:
        """The model folder's speaker encoder (`speakers/`), else the installed Resemblyzer's; loaded once."""
        if self._speaker_encoder is None:
            self._speaker_encoder = SpeakerEncoder.from_pretrained(self.model.name_or_path or None)
        return self._speaker_encoder

    def analyze_segments(
        self,
        media: Iterator[SegmentMedia],
        total: int,
        transcribe: bool,
        report,
        batch_size: int,
        faces: dict[float, UtteranceFace] | None = None,
    ):
        done = 0
        report("Analysing segments", done, total)
        while pairs := [
            (segment, self.segment_inputs(segment, (faces or {}).get(segment.start)))
            for segment in islice(media, batch_size)
        ]:
            batch, samples = [segment for segment, _ in pairs], [sample for _, sample in pairs]
            if transcribe:
                self.transcribe(samples)
            for segment, sample, prediction in zip(batch, samples, self.predict(samples)):
                yield self.segment_result(segment, sample, prediction)
            done += len(batch)
            report("Analysing segments", done, total)

    def analyze_media(self, media: list[SegmentMedia], transcribe: bool = True) -> list[dict]:
        """Segments' media (a live stream's utterances) as one batch: each one's result, in order."""
        return list(self.analyze_segments(iter(media), len(media), transcribe, lambda *_: None, len(media)))

    def segment_inputs(self, segment: SegmentMedia, face: UtteranceFace | None = None) -> EmotionInputs:
        """
        A segment's inputs, its faces cut out as it arrives (`face`: the boxes chosen for it, else the processor's
        most confident face): the batch holds the crops, not the pictures.
        """
        sample = EmotionInputs()
        if segment.waveform is not None and segment.waveform.size:
            sample.waveform = segment.waveform  # a model that reads no speech still gets its words
        if segment.frames and face is not None:
            sample.faces = chosen_faces(segment.frames, face, sample.notes)
        elif segment.frames:
            sample.faces = self.faces(segment.frames, sample.notes)
        elif segment.frames is not None:
            sample.notes.append("No picture on screen: the face input was left out.")
        segment.frames = None  # the pictures go as soon as their faces are cut
        return sample

    def segment_result(self, segment: SegmentMedia, sample: EmotionInputs, prediction) -> dict:
        return {"start": round(segment.start, 3), "end": round(segment.end, 3), **self.result(sample, prediction)}

    def result(self, sample: EmotionInputs, prediction: EmotionPrediction | None) -> dict:
        """A sample's answer with its reasons: words, each input alone, contributions (if computed), gates, notes."""
        heard = {"text": sample.words, **({"language": sample.language} if sample.language is not None else {})}
        if prediction is None:
            nothing = {"label": None, "score": None, "uncertain": None, "scores": {}, "inputs": {}, "gates": {}}
            return {**heard, **nothing, "notes": sample.notes}
        pairs = [tuple(pair) for pair in self.model.config.modality_pairs]
        present = set(self.used_modalities(sample))
        top = int(prediction.probabilities.argmax())
        contributions = {
            NAMES[m]: float(prediction.probabilities[top] - rest[top])
            for m, rest in (prediction.without or {}).items()
        }
        return {
            **heard,
            "label": self.labels[top],
            "score": float(prediction.probabilities[top]),
            "uncertain": self.uncertain(prediction.probabilities),
            "scores": dict(zip(self.labels, prediction.probabilities.tolist())),
            "inputs": {
                NAMES[m]: {"label": self.labels[int(p.argmax())], "score": float(p.max())}
                for m, p in prediction.alone.items()
            },
            **({"contributions": contributions} if prediction.without is not None else {}),
            "gates": {
                f"{NAMES[a]}->{NAMES[b]}": float(prediction.gates[index])
                for index, (a, b) in enumerate(pairs)
                if a in present and b in present
            },
            "notes": sample.notes,
        }
