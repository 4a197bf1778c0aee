"""Processor for GIA-MIC: tokenizer + audio feature extractor + image processor, with resampling and frame sampling."""

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import logging

from .faces_gia_mic import NoFaceFoundError, crop_faces
from .inputs_multimodal import PROCESSOR_OUTPUT_NAMES


logger = logging.get_logger(__name__)


def check_sampling_rate(rate, name: str = "sampling_rate") -> int:
    """A sampling rate as a positive whole number of samples per second; anything else is a clear error."""
    numeric = isinstance(rate, int | float | np.integer | np.floating) and not isinstance(rate, bool)
    if not (numeric and math.isfinite(rate) and rate == int(rate) and rate > 0):
        raise ValueError(f"`{name}` must be a positive whole number of samples per second; got {rate!r}.")
    return int(rate)


def resample(
    waveform: np.ndarray,
    orig_sr: int,
    target_sr: int,
    lowpass_filter_width: int = 16,
    rolloff: float = 0.945,
    chunk_elements: int = 1 << 16,
) -> np.ndarray:
    """
    Band-limited resampling with a Hann-windowed sinc filter (the filter of torchaudio's `sinc_interp_hann`), in
    plain torch so the processor needs nothing beyond torch and transformers where it runs as remote code.

    Each output sample is the filter evaluated at its exact position in the input, so any pair of rates works
    (44,101 -> 16,000 Hz as well as 48,000 -> 16,000 Hz) with no filter bank sized by the rates' common factors:
    time and memory grow with the clip's length only, and output samples are computed `chunk_elements` taps at a
    time so peak memory stays bounded whatever the length.
    """
    orig_sr, target_sr = check_sampling_rate(orig_sr), check_sampling_rate(target_sr)
    if orig_sr == target_sr:
        return waveform
    scale = rolloff * min(1.0, target_sr / orig_sr)  # the filter's cutoff relative to the input's Nyquist rate
    width = math.ceil(lowpass_filter_width / scale)  # input samples on each side of an output position
    taps = torch.arange(-width, width + 2, dtype=torch.int64)
    signal = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(waveform, np.float32)), (width, width + 2))
    num_outputs = math.ceil(target_sr * waveform.size / orig_sr)
    # Output n sits at input position n * orig_sr / target_sr: whole part `first`, fractional part `phase / period`.
    period = target_sr // math.gcd(orig_sr, target_sr)
    bank = None  # per-phase weights, when the rates share enough factors for a small bank
    if period * taps.numel() <= chunk_elements:
        bank = filter_weights(torch.arange(period), period, taps, scale, lowpass_filter_width)
    step = max(1, chunk_elements // taps.numel())
    resampled = torch.empty(num_outputs, dtype=torch.float64)
    for start in range(0, num_outputs, step):
        position = torch.arange(start, min(start + step, num_outputs), dtype=torch.int64) * orig_sr
        first = torch.div(position, target_sr, rounding_mode="floor")
        phase = torch.div(position - first * target_sr, target_sr // period, rounding_mode="floor")
        weights = bank[phase] if bank is not None else filter_weights(phase, period, taps, scale, lowpass_filter_width)
        window = signal[first[:, None] + taps[None] + width].double()  # float64 per chunk only
        resampled[start : start + step] = (window * weights).sum(dim=1)
    return resampled.float().numpy()


def filter_weights(
    phase: torch.Tensor, period: int, taps: torch.Tensor, scale: float, lowpass_filter_width: int
) -> torch.Tensor:
    """Windowed-sinc weights (positions, taps) of the input samples around positions `phase / period` past a sample."""
    times = (taps[None].double() - phase[:, None].double() / period) * scale
    times = times.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(times * math.pi / lowpass_filter_width / 2) ** 2
    return torch.special.sinc(times) * window * scale


def uniform_frame_indices(num_available: int, num_frames: int) -> list[int]:
    """`num_frames` indices spread evenly over `num_available` frames (all of them when there are fewer)."""
    if num_available <= num_frames:
        return list(range(num_available))
    return np.linspace(0, num_available - 1, num_frames).round().astype(int).tolist()


# Pictures are held at most MAX_FRAME_SIDE pixels on their longer side (larger ones are shrunk when decoded): face
# detection works on at most DETECTION_MAX_SIDE and the face towers read crops of 48-224 pixels, so nothing they use
# is lost, and memory is bounded whatever the upload. An image over MAX_IMAGE_PIXELS is refused before it is decoded.
MAX_FRAME_SIDE, MAX_IMAGE_PIXELS = 1280, 50_000_000


def bounded_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) shrunk, keeping the aspect ratio, so the longer side is at most MAX_FRAME_SIDE."""
    scale = min(1.0, MAX_FRAME_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_image_size(width: int, height: int, what: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); at most "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels are taken. Scale it down first."
        )


def picture(frame) -> np.ndarray:
    """A decoded video frame as RGB pixels, shrunk to a bounded size (`bounded_size`) as it is converted."""
    width, height = bounded_size(frame.width, frame.height)
    return frame.to_ndarray(width=width, height=height, format="rgb24")


def missing_file_reason(path: str | os.PathLike) -> str:
    """Why a path that is not a readable file is not one, in a few words."""
    if os.path.isdir(path):
        return "a folder, not a file"
    if os.path.islink(path):
        return "a link that leads nowhere (or in a loop)"
    return "no such file" if not os.path.exists(path) else "not a regular file"


def open_image(path: str | os.PathLike):
    """An image file as an RGB PIL image of bounded size; its size is checked before its pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    name = Path(path).name
    try:
        with warnings.catch_warnings():  # PIL's own warning for large images: the size is checked here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            check_image_size(*image.size, f"Image {name}")
            image.draft("RGB", bounded_size(*image.size))  # JPEG: decoded at a reduced scale where it can
            if image.mode not in ("RGB", "RGBA", "L", "LA"):  # palette and other modes: convert before shrinking
                image = image.convert("RGB")
            if image.size != bounded_size(*image.size):  # shrunk in its own mode: no full-size RGB copy
                image = image.resize(bounded_size(*image.size), Image.Resampling.BOX)
            return image.convert("RGB")
    except (IsADirectoryError, FileNotFoundError):
        raise ValueError(f"{name}: {missing_file_reason(path)}.") from None
    except Image.DecompressionBombError:
        raise ValueError(
            f"Image {name} is over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels; at most "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels are taken. Scale it down first."
        ) from None
    except (UnidentifiedImageError, OSError):
        raise ValueError(f"{name}: not an image file that can be read.") from None


def read_video_frames(
    path: str | os.PathLike, num_frames: int, start: float | None = None, end: float | None = None
) -> list[np.ndarray]:
    """
    Decode a video file with PyAV and return `num_frames` RGB frames (height, width, 3), of bounded size, sampled
    uniformly from the span [start, end] seconds (the whole file by default). A first pass reads only the frames'
    times, so the chosen frames alone are kept, whatever the video's length.
    """
    try:
        import av
    except ImportError as error:
        raise ImportError("Reading video files needs PyAV: `pip install av`.") from error
    name = Path(path).name
    if not os.path.isfile(path):
        raise ValueError(f"{name}: {missing_file_reason(path)}.")
    try:
        times = sorted(frame_times_in_span(av, path, start, end))
        wanted = [times[i] for i in uniform_frame_indices(len(times), num_frames)]
        frames = []
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if start:
                container.seek(int(start / stream.time_base), stream=stream, any_frame=False, backward=True)
            for frame in container.decode(stream):
                while wanted and frame.time is not None and frame.time >= wanted[0]:
                    if not frames or frames[-1][0] != frame.time:
                        frames.append((frame.time, picture(frame)))
                    wanted.pop(0)
                if not wanted:
                    break
    except (av.error.FFmpegError, OSError):
        raise ValueError(f"{name}: not a video file that can be read.") from None
    if not frames:
        span = f" between {start} s and {end} s" if start is not None or end is not None else ""
        raise ValueError(f"Video {name} has no decodable frames{span}.")
    return [picture for _, picture in frames]


def frame_times_in_span(av, path: str | os.PathLike, start: float | None, end: float | None) -> list[float]:
    """The presentation times of the video's frames inside [start, end], from its packets (nothing decoded)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{Path(path).name} has no video stream.")
        stream = container.streams.video[0]
        times = []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            time = float(packet.pts * stream.time_base)
            if (start is None or time >= start) and (end is None or time <= end):
                times.append(time)
    return times


def encode_text(
    tokenizer, text: str | list[str], max_length: int | None = None, allow_empty: bool = False
) -> dict[str, np.ndarray]:
    """
    Tokenise a sentence or a batch, padded to the longest: `input_ids`, `attention_mask`. Empty text is an error
    unless `allow_empty` (a dataset's utterance with no transcript is then the empty sentence, e.g. [CLS] [SEP]).
    Text longer than `max_length`, or than the encoder's own maximum when none is given, is truncated with a warning.
    """
    texts = [text] if isinstance(text, str) else list(text)
    if not texts:
        raise ValueError("`text` is an empty list; give at least one sentence.")
    for index, sentence in enumerate(texts):
        if not isinstance(sentence, str) or not (sentence.strip() or allow_empty):
            raise ValueError(f"Text of sample {index} is empty or not a string: {sentence!r}.")
    limit = max_length or encoder_max_length(tokenizer)
    encoded = tokenizer(texts, padding=True, truncation=limit is not None, max_length=limit, return_tensors="np")
    if max_length is None and limit is not None and encoded["attention_mask"].sum(axis=1).max() >= limit:
        full = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
        for index in (i for i, length in enumerate(full) if length > limit):
            logger.warning(
                f"Text of sample {index} has {full[index]} tokens; only the first {limit} (the text encoder's "
                "maximum) are used."
            )
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def encoder_max_length(tokenizer) -> int | None:
    """The tokenizer's `model_max_length` when it is a real limit (transformers uses a huge number for 'none')."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit < 1_000_000 else None


def as_float_waveform(waveform, index: int) -> np.ndarray:
    """
    One clip as float32 in [-1, 1]: float arrays as they are, integer PCM divided by its full scale (int16 by 32768,
    uint8 centred on 128), so the same sound gives the same features whatever its sample format.
    """
    try:
        array = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    except ValueError:  # a ragged nesting of lists
        raise ValueError(f"Audio of sample {index} is not an array of samples (lists of unequal lengths?).") from None
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind == "i":
        return (array / float(2 ** (8 * array.dtype.itemsize - 1))).astype(np.float32)
    if array.dtype.kind == "u":
        middle = float(2 ** (8 * array.dtype.itemsize - 1))
        return ((array - middle) / middle).astype(np.float32)
    raise ValueError(f"Audio of sample {index} has samples of type {array.dtype}; expected float or integer PCM.")


# Float audio lies in [-1, 1]; unscaled 16- or 24-bit values in a float array still pass, larger ones are not audio.
MAX_SAMPLE_MAGNITUDE = 1e7


def check_waveform(
    waveform: np.ndarray, what: str, sampling_rate: int | None = None, max_seconds: float | None = None
) -> None:
    """
    A clip the model can read: mono, not empty, every sample finite and, given its rate, within `max_seconds` (checked
    before anything is resampled or run). `what` names it in the error.
    """
    if waveform.ndim != 1:
        raise ValueError(
            f"{what} must be a mono 1-D waveform; got shape {waveform.shape}. Average the channels first."
        )
    if waveform.size == 0:
        raise ValueError(f"{what} is empty (0 samples).")
    if sampling_rate is not None and max_seconds is not None and waveform.size / sampling_rate > max_seconds:
        raise ValueError(
            f"{what} is {waveform.size / sampling_rate:.1f} s long ({waveform.size} samples at {sampling_rate} Hz); "
            f"at most {max_seconds:g} s are taken."
        )
    if not np.isfinite(waveform).all():
        raise ValueError(f"{what} contains NaN or infinite values.")
    loudest = float(np.abs(waveform).max())
    if loudest > MAX_SAMPLE_MAGNITUDE:
        raise ValueError(
            f"{what} has samples up to {loudest:.3g}; expected float audio in [-1, 1] (or integer PCM, scaled by its "
            "full range)."
        )


def audio_clips(audio) -> list:
    """
    The documented audio layouts: one 1-D waveform, or a list/tuple of 1-D waveforms. A 2-D array is ambiguous
    (channels or a batch? which axis?) and refused with what to do instead.
    """
    if isinstance(audio, np.ndarray | torch.Tensor):
        if audio.ndim == 1:
            return [audio]
        raise ValueError(
            f"`audio` is an array of shape {tuple(audio.shape)}; pass one mono 1-D waveform, or a list of them for a "
            "batch. For stereo, average the channels first (e.g. `audio.mean(axis=1)` for a (samples, channels) "
            "array); for a batch of equal-length clips, pass `list(audio)`."
        )
    if isinstance(audio, list | tuple):
        if not audio:
            raise ValueError("`audio` is an empty list; give at least one waveform.")
        return list(audio)
    raise ValueError(f"`audio` must be a 1-D waveform or a list of them; got {type(audio).__name__}.")


def encode_audio(feature_extractor, audio, sampling_rate: int | None) -> dict[str, np.ndarray]:
    """
    Mono waveform(s) at `sampling_rate` -> resampled to the extractor's rate -> `input_values` (wav2vec2-style) or
    `input_features` (Whisper log-mel, real length only), with `audio_attention_mask`. Integer PCM is scaled to
    [-1, 1]; see `audio_clips` for the accepted layouts.
    """
    if sampling_rate is None:
        raise ValueError(
            "Pass the `sampling_rate` of `audio`; it is resampled to "
            f"{feature_extractor.sampling_rate} Hz for the audio encoder."
        )
    sampling_rate = check_sampling_rate(sampling_rate)
    prepared = []
    for index, clip in enumerate(audio_clips(audio)):
        waveform = as_float_waveform(clip, index)
        check_waveform(waveform, f"Audio of sample {index}")
        prepared.append(resample(waveform, sampling_rate, feature_extractor.sampling_rate))
    if "input_features" in feature_extractor.model_input_names:
        return log_mel_batch(feature_extractor, prepared)
    extracted = feature_extractor(
        prepared,
        sampling_rate=feature_extractor.sampling_rate,
        padding="longest",
        return_attention_mask=True,
        return_tensors="np",
    )
    return {"input_values": extracted["input_values"], "audio_attention_mask": extracted["attention_mask"]}


def log_mel_batch(feature_extractor, waveforms: list[np.ndarray]) -> dict[str, np.ndarray]:
    """
    Whisper log-mel features of each clip computed alone, then zero-padded to the longest: the extractor on a padded
    batch would take a short clip's last frames (and its normalisation) over the silence appended to it, so a clip's
    features would depend on the other clips of its batch.
    """
    alone = [
        feature_extractor(
            waveform, sampling_rate=feature_extractor.sampling_rate, padding="longest", return_tensors="np"
        )["input_features"][0]
        for waveform in waveforms
    ]
    input_features, mask = pad_and_stack([features.T for features in alone])  # (frames, mel bins) each
    return {"input_features": input_features.transpose(0, 2, 1), "audio_attention_mask": mask}


def pad_and_stack(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of different lengths (along their first axis) zero-padded into one float32 batch, with a 1/0 mask."""
    longest = max(len(sequence) for sequence in sequences)
    batch = np.zeros((len(sequences), longest, *sequences[0].shape[1:]), dtype=np.float32)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for index, sequence in enumerate(sequences):
        batch[index, : len(sequence)] = sequence
        mask[index, : len(sequence)] = 1
    return batch, mask


def as_rgb(frame, index: int = 0, what: str | None = None):
    """
    Video frames are RGB: greyscale (H x W or H x W x 1), RGBA and other PIL modes are converted, so any image
    processor fits. An image without pixels, with another layout or over `MAX_IMAGE_PIXELS` is an error, its message
    naming the image (`what`, else "Image of sample {index}").
    """
    what = what or f"Image of sample {index}"
    if hasattr(frame, "mode") and hasattr(frame, "convert"):  # a PIL image
        if 0 in frame.size:
            raise ValueError(f"{what} has size {frame.size[0]}x{frame.size[1]}; it has no pixels.")
        check_image_size(*frame.size, what)
        return frame if frame.mode == "RGB" else frame.convert("RGB")
    array = np.asarray(frame)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"{what} has shape {array.shape}; expected (height, width), (height, width, 1), "
            "(height, width, 3) or (height, width, 4)."
        )
    if 0 in array.shape[:2]:
        raise ValueError(f"{what} has shape {array.shape}; it has no pixels.")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds {array.dtype} values; expected pixel numbers.")
    check_image_size(array.shape[1], array.shape[0], what)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=-1)
    return array[..., :3]


def cut_to_faces(clips: list[list]) -> list[list[np.ndarray]]:
    """Each frame (any picture `as_rgb` takes) cut to its face, aligned (`crop_faces`); see `NoFaceFoundError`."""
    return crop_faces([[np.asarray(as_rgb(frame, index)) for frame in clip] for index, clip in enumerate(clips)])


def encode_frames(image_processor, images, num_frames: int, detect_faces: bool = False) -> dict[str, np.ndarray]:
    """
    Per sample one image or a list of frames (subsampled uniformly to `num_frames`; with `detect_faces`, each cut to
    its largest face) -> `pixel_values` (batch, frames, channels, height, width) with `frame_mask` (batch, frames).
    """
    samples = [images] if not isinstance(images, list | tuple) else list(images)
    if not samples:
        raise ValueError("`images` is an empty list; give at least one image or list of frames.")
    clips = [list(s) if isinstance(s, list | tuple) else [s] for s in samples]
    clips = [[clip[i] for i in uniform_frame_indices(len(clip), num_frames)] for clip in clips]
    for index, clip in enumerate(clips):
        if not clip:
            raise ValueError(f"Sample {index} has no frames.")
    if detect_faces:
        clips = cut_to_faces(clips)
    flat = [as_rgb(frame, index) for index, clip in enumerate(clips) for frame in clip]
    pixels = image_processor(flat, return_tensors="np")["pixel_values"]
    pixel_values, frame_mask = pad_and_stack(np.split(pixels, np.cumsum([len(clip) for clip in clips])[:-1]))
    return {"pixel_values": pixel_values, "frame_mask": frame_mask}


# The processor's parts and the modality each prepares.
PARTS = {"tokenizer": "text", "feature_extractor": "audio", "image_processor": "vision"}
ABSENT = object()  # stands for a part a saved processor does not have, while transformers loads the others


class GiaMicProcessor(ProcessorMixin):
    r"""
    Prepares text, speech and face video for [`GiaMicModel`]: a tokenizer, an audio feature extractor
    (wav2vec2-style `input_values` or Whisper `input_features`) and an image processor applied to every frame; a
    model of some of the modalities has only their parts. The one preparation of an item, saved with the model and
    used alike by training, evaluation, feature extraction and the pipeline.

    Args:
        tokenizer: Any tokenizer of the text encoder.
        feature_extractor: The audio encoder's feature extractor; waveforms are resampled to its `sampling_rate`.
        image_processor: The vision encoder's image processor (use a `*ImageProcessorPil` class where torchvision is
            unavailable).
        num_frames (`int`, defaults to 8): Frames sampled uniformly from each video.
        detect_faces (`bool`, defaults to `False`): Cut every image and frame to its most confident face, aligned
            upright and framed like FER-2013's crops (dlib's detectors and landmarks, `faces_gia_mic.py`), before
            the image processor; frames without a face are dropped, and a sample without any raises
            `NoFaceFoundError`. Use it for photos and videos in which the face is not already the whole picture.
        max_length (`int`, *optional*): Text is truncated to this many tokens (default: the text encoder's
            maximum, with a warning).
        modalities (`list[str]`, *optional*): The modalities prepared: those whose part is given.
    """

    def __init__(
        self,
        tokenizer=None,
        feature_extractor=None,
        image_processor=None,
        num_frames: int = 8,
        detect_faces: bool = False,
        max_length: int | None = None,
        modalities: Sequence[str] | None = None,
    ):
        given = {"tokenizer": tokenizer, "feature_extractor": feature_extractor, "image_processor": image_processor}
        present = [part for part, value in given.items() if value is not None]
        if not present:
            raise ValueError("A GiaMicProcessor needs at least one of tokenizer, feature_extractor, image_processor.")
        self.num_frames, self.detect_faces, self.max_length = num_frames, detect_faces, max_length
        self.modalities = [PARTS[part] for part in present]
        self.chat_template = None
        for part, value in given.items():
            if value is not None:
                self.check_argument_for_proper_class(part, value)
            setattr(self, part, value)
        # transformers saves the parts an instance lists; the class lists all three (see `_resolve_subprocessors`)
        self.get_attributes = lambda: list(present)

    @classmethod
    def _resolve_subprocessors(cls, pretrained_model_name_or_path, processor_dict, **kwargs):
        """The saved parts loaded as transformers loads them; those the saved processor lacks stay None."""
        saved = processor_dict.get("modalities") or list(PARTS.values())
        absent = {part: ABSENT for part, modality in PARTS.items() if modality not in saved}
        processor_dict, kwargs = super()._resolve_subprocessors(
            pretrained_model_name_or_path, processor_dict, **kwargs, **absent
        )
        return {k: None if v is ABSENT else v for k, v in processor_dict.items()}, kwargs

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio: np.ndarray | Sequence[np.ndarray] | None = None,
        sampling_rate: int | None = None,
        images=None,
        videos: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        return_tensors: str = "pt",
        allow_empty_text: bool = False,
    ) -> BatchFeature:
        r"""
        Args:
            text: A sentence or a batch of sentences.
            audio: A mono waveform (a 1-D float array, or integer PCM scaled by its full range) or a list of them,
                at `sampling_rate` Hz. 2-D arrays are refused as ambiguous: average stereo channels first.
            sampling_rate: Rate of `audio`; it is resampled to the feature extractor's rate when they differ.
            images: Per sample, one face image or a list of frames (PIL images or arrays); one image alone is a batch
                of one. Lists longer than `num_frames` are subsampled uniformly.
            videos: Per sample, the path of a video file (or one path alone); `num_frames` frames are sampled.
            allow_empty_text: An empty sentence is tokenised as such (a dataset's utterance without transcript)
                instead of refused.

        Returns:
            [`BatchFeature`] with `input_ids`, `attention_mask`; `input_values` or `input_features` with
            `audio_attention_mask`; `pixel_values` (batch, frames, channels, height, width) with `frame_mask`.
        """
        if images is not None and videos is not None:
            raise ValueError("Pass face frames either as `images` or as `videos`, not both.")
        if text is None and audio is None and images is None and videos is None:
            raise ValueError("Nothing to process: pass at least one of `text`, `audio`, `images` or `videos`.")
        for given, modality in ((text, "text"), (audio, "audio"), (images if videos is None else videos, "vision")):
            if given is not None and modality not in self.modalities:
                raise ValueError(
                    f"This processor prepares {', '.join(self.modalities)} only (its model reads no {modality})."
                )
        outputs, batch_sizes = {}, {}
        if text is not None:
            outputs.update(encode_text(self.tokenizer, text, self.max_length, allow_empty_text))
            batch_sizes["text"] = len(outputs["input_ids"])
        if audio is not None:
            outputs.update(encode_audio(self.feature_extractor, audio, sampling_rate))
            batch_sizes["audio"] = len(outputs["audio_attention_mask"])
        if videos is not None:
            paths = [videos] if isinstance(videos, (str, os.PathLike)) else list(videos)
            images = [read_video_frames(path, self.num_frames) for path in paths]
        if images is not None:
            outputs.update(encode_frames(self.image_processor, images, self.num_frames, self.detect_faces))
            batch_sizes["vision"] = len(outputs["frame_mask"])
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"Every modality needs the same number of samples; got {batch_sizes}.")
        return BatchFeature(outputs, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return list(PROCESSOR_OUTPUT_NAMES)


GiaMicProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["GiaMicProcessor", "NoFaceFoundError"]
