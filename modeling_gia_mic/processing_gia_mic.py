"""Processor for GIA-MIC: tokenizer + audio feature extractor + image processor, with resampling and frame sampling."""

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin


# What the processor can return; the model takes these and the `*_features` / `*_feature_mask` inputs.
PROCESSOR_OUTPUT_NAMES = (
    "input_ids",
    "attention_mask",
    "input_values",
    "input_features",
    "audio_attention_mask",
    "pixel_values",
    "frame_mask",
)


def resample(
    waveform: np.ndarray, orig_sr: int, target_sr: int, lowpass_filter_width: int = 16, rolloff: float = 0.945
) -> np.ndarray:
    """
    Band-limited resampling with a Hann-windowed sinc filter (the algorithm of torchaudio's `sinc_interp_hann`),
    in plain torch so the processor needs nothing beyond torch and transformers where it runs as remote code.
    """
    if orig_sr == target_sr:
        return waveform
    gcd = math.gcd(orig_sr, target_sr)
    orig, new = orig_sr // gcd, target_sr // gcd
    cutoff = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    offsets = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    times = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + offsets) * cutoff
    times = times.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(times * math.pi / lowpass_filter_width / 2) ** 2
    times = times * math.pi
    sinc = torch.where(times == 0, torch.ones_like(times), torch.sin(times) / times)
    kernels = sinc * window * (cutoff / orig)
    signal = torch.nn.functional.pad(torch.from_numpy(waveform).double()[None, None], (width, width + orig))
    resampled = torch.nn.functional.conv1d(signal, kernels, stride=orig).transpose(1, 2).reshape(-1)
    return resampled[: math.ceil(new * waveform.size / orig)].float().numpy()


def uniform_frame_indices(num_available: int, num_frames: int) -> list[int]:
    """`num_frames` indices spread evenly over `num_available` frames (all of them when there are fewer)."""
    if num_available <= num_frames:
        return list(range(num_available))
    return np.linspace(0, num_available - 1, num_frames).round().astype(int).tolist()


def read_video_frames(
    path: str | os.PathLike, num_frames: int, start: float | None = None, end: float | None = None
) -> list[np.ndarray]:
    """
    Decode a video file with PyAV and return `num_frames` RGB frames (height, width, 3) sampled uniformly from the
    span [start, end] seconds (the whole file by default).
    """
    try:
        import av
    except ImportError as error:
        raise ImportError("Reading video files needs PyAV: `pip install av`.") from error
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream.")
            stream = container.streams.video[0]
            if start:
                container.seek(int(start / stream.time_base), stream=stream, any_frame=False, backward=True)
            frames = []
            for frame in container.decode(stream):
                timestamp = float(frame.pts * stream.time_base) if frame.pts is not None else None
                if start is not None and timestamp is not None and timestamp < start:
                    continue
                if end is not None and timestamp is not None and timestamp > end:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, OSError) as error:
        raise ValueError(f"Cannot decode video {path}: {error.__class__.__name__}.") from None
    if not frames:
        span = f" between {start} s and {end} s" if start is not None or end is not None else ""
        raise ValueError(f"Video {path} has no decodable frames{span}.")
    return [frames[i] for i in uniform_frame_indices(len(frames), num_frames)]


def encode_text(
    tokenizer, text: str | list[str], max_length: int | None = None, allow_empty: bool = False
) -> dict[str, np.ndarray]:
    """
    Tokenise a sentence or a batch, padded to the longest: `input_ids`, `attention_mask`. Empty text is an error
    unless `allow_empty` (a dataset's utterance with no transcript is then the empty sentence, e.g. [CLS] [SEP]).
    """
    texts = [text] if isinstance(text, str) else list(text)
    for index, sentence in enumerate(texts):
        if not isinstance(sentence, str) or not (sentence.strip() or allow_empty):
            raise ValueError(f"Text of sample {index} is empty or not a string: {sentence!r}.")
    encoded = tokenizer(
        texts, padding=True, truncation=max_length is not None, max_length=max_length, return_tensors="np"
    )
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def encode_audio(feature_extractor, audio, sampling_rate: int | None) -> dict[str, np.ndarray]:
    """
    Mono waveform(s) at `sampling_rate` -> resampled to the extractor's rate -> `input_values` (wav2vec2-style) or
    `input_features` (Whisper log-mel, real length only), with `audio_attention_mask`.
    """
    if sampling_rate is None:
        raise ValueError(
            "Pass the `sampling_rate` of `audio`; it is resampled to "
            f"{feature_extractor.sampling_rate} Hz for the audio encoder."
        )
    is_single = isinstance(audio, np.ndarray | torch.Tensor) and np.ndim(audio) == 1
    waveforms = [audio] if is_single else list(audio)
    prepared = []
    for index, waveform in enumerate(waveforms):
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(
                f"Audio of sample {index} must be a mono 1-D waveform; got shape {waveform.shape}. "
                "Average the channels first."
            )
        if waveform.size == 0:
            raise ValueError(f"Audio of sample {index} is empty (0 samples).")
        if not np.isfinite(waveform).all():
            raise ValueError(f"Audio of sample {index} contains NaN or infinite values.")
        prepared.append(resample(waveform, sampling_rate, feature_extractor.sampling_rate))
    extracted = feature_extractor(
        prepared,
        sampling_rate=feature_extractor.sampling_rate,
        padding="longest",
        return_attention_mask=True,
        return_tensors="np",
    )
    name = "input_features" if "input_features" in extracted else "input_values"
    return {name: extracted[name], "audio_attention_mask": extracted["attention_mask"]}


def as_rgb(frame):
    """Video frames are RGB: greyscale (or RGBA) images and 2-D arrays are converted, so any image processor fits."""
    if hasattr(frame, "mode") and hasattr(frame, "convert"):  # a PIL image
        return frame if frame.mode == "RGB" else frame.convert("RGB")
    array = np.asarray(frame)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=-1)
    if array.ndim == 3 and array.shape[-1] == 4:
        return array[..., :3]
    return array


def encode_frames(image_processor, images, num_frames: int) -> dict[str, np.ndarray]:
    """
    Per sample one image or a list of frames (subsampled uniformly to `num_frames`) -> `pixel_values`
    (batch, frames, channels, height, width) with `frame_mask` (batch, frames).
    """
    samples = [images] if not isinstance(images, list | tuple) else list(images)
    clips = [list(s) if isinstance(s, list | tuple) else [s] for s in samples]
    clips = [[clip[i] for i in uniform_frame_indices(len(clip), num_frames)] for clip in clips]
    for index, clip in enumerate(clips):
        if not clip:
            raise ValueError(f"Sample {index} has no frames.")
    flat = [as_rgb(frame) for clip in clips for frame in clip]
    pixels = image_processor(flat, return_tensors="np")["pixel_values"]
    max_frames = max(len(clip) for clip in clips)
    pixel_values = np.zeros((len(clips), max_frames, *pixels.shape[1:]), dtype=np.float32)
    frame_mask = np.zeros((len(clips), max_frames), dtype=np.int64)
    offset = 0
    for index, clip in enumerate(clips):
        pixel_values[index, : len(clip)] = pixels[offset : offset + len(clip)]
        frame_mask[index, : len(clip)] = 1
        offset += len(clip)
    return {"pixel_values": pixel_values, "frame_mask": frame_mask}


class GiaMicProcessor(ProcessorMixin):
    r"""
    Prepares text, speech and face video for [`GiaMicModel`]: a tokenizer, an audio feature extractor
    (wav2vec2-style `input_values` or Whisper `input_features`) and an image processor applied to every frame.

    Args:
        tokenizer: Any tokenizer of the text encoder.
        feature_extractor: The audio encoder's feature extractor; waveforms are resampled to its `sampling_rate`.
        image_processor: The vision encoder's image processor (use a `*ImageProcessorPil` class where torchvision is
            unavailable).
        num_frames (`int`, defaults to 8): Frames sampled uniformly from each video.
    """

    def __init__(self, tokenizer=None, feature_extractor=None, image_processor=None, num_frames: int = 8):
        self.num_frames = num_frames
        super().__init__(tokenizer, feature_extractor, image_processor)

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio: np.ndarray | Sequence[np.ndarray] | None = None,
        sampling_rate: int | None = None,
        images=None,
        videos: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        max_length: int | None = None,
        return_tensors: str = "pt",
    ) -> BatchFeature:
        r"""
        Args:
            text: A sentence or a batch of sentences.
            audio: A mono waveform or a batch of them (1-D float arrays), at `sampling_rate` Hz.
            sampling_rate: Rate of `audio`; it is resampled to the feature extractor's rate when they differ.
            images: Per sample, one face image or a list of frames (PIL images or arrays); one image alone is a batch
                of one. Lists longer than `num_frames` are subsampled uniformly.
            videos: Per sample, the path of a video file (or one path alone); `num_frames` frames are sampled.
            max_length: Truncate text to this many tokens.

        Returns:
            [`BatchFeature`] with `input_ids`, `attention_mask`; `input_values` or `input_features` with
            `audio_attention_mask`; `pixel_values` (batch, frames, channels, height, width) with `frame_mask`.
        """
        if images is not None and videos is not None:
            raise ValueError("Pass face frames either as `images` or as `videos`, not both.")
        if text is None and audio is None and images is None and videos is None:
            raise ValueError("Nothing to process: pass at least one of `text`, `audio`, `images` or `videos`.")
        outputs, batch_sizes = {}, {}
        if text is not None:
            outputs.update(encode_text(self.tokenizer, text, max_length))
            batch_sizes["text"] = len(outputs["input_ids"])
        if audio is not None:
            outputs.update(encode_audio(self.feature_extractor, audio, sampling_rate))
            batch_sizes["audio"] = len(outputs["audio_attention_mask"])
        if videos is not None:
            paths = [videos] if isinstance(videos, (str, os.PathLike)) else list(videos)
            images = [read_video_frames(path, self.num_frames) for path in paths]
        if images is not None:
            outputs.update(encode_frames(self.image_processor, images, self.num_frames))
            batch_sizes["vision"] = len(outputs["frame_mask"])
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"Every modality needs the same number of samples; got {batch_sizes}.")
        return BatchFeature(outputs, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return list(PROCESSOR_OUTPUT_NAMES)


GiaMicProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["GiaMicProcessor"]
