"""
One way to read audio for the model: PyAV decodes a file (or its bytes) at its own rate, the channels are averaged,
and `resample` (the processor's windowed-sinc filter) brings it to 16 kHz. A file and an array of the same clip, a
dataset's cell and a span of a recording therefore give the model the same waveform.

Remote code: numpy and torch; PyAV is imported when a file is read.
"""

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .processing_gia_mic import check_waveform, resample


SAMPLING_RATE = 16000


def import_av():
    try:
        import av
    except ImportError as error:
        raise ImportError("Reading audio and video files needs PyAV: `pip install av`.") from error
    return av


def decode_audio(container, rate: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """
    (start time in seconds, mono float32 samples) of each decoded piece of the first audio track: at the track's own
    rate with the channels averaged, or at `rate` through libswresample as it streams (for the voice-activity
    detector, which reads but never feeds the model).
    """
    av = import_av()
    stream = container.streams.audio[0]
    own_rate = rate is None
    converter = av.AudioResampler(format="fltp") if own_rate else av.AudioResampler("flt", "mono", rate)
    origin, position = None, 0

    def pieces(frame) -> Iterator[tuple[float, np.ndarray]]:
        nonlocal position
        for piece in converter.resample(frame):
            samples = piece.to_ndarray()
            samples = samples.mean(axis=0, dtype=np.float32) if own_rate else samples.reshape(-1)
            yield (origin or 0.0) + position / (piece.sample_rate or rate), samples
            position += samples.size

    for frame in container.decode(stream):
        if origin is None:
            origin = float(frame.time or 0.0)
        yield from pieces(frame)
    yield from pieces(None)


def audio_rate(container) -> int:
    """The first audio track's sampling rate."""
    stream = container.streams.audio[0]
    return int(stream.rate or stream.codec_context.sample_rate)


def read_audio(source: str | os.PathLike | bytes, max_seconds: float, name: str | None = None) -> np.ndarray:
    """
    A whole clip (a path, or a file's bytes; any format PyAV reads) as 16 kHz mono float32. Longer than
    `max_seconds`: refused as soon as the decoding passes the limit. `name` names it in errors (default: the file's).
    """
    waveform, rate = decode_clip(source, max_seconds, name)
    check_waveform(waveform, f"The audio of {name or source_name(source)}")
    return resample(waveform, rate, SAMPLING_RATE)


class NoAudioTrackError(ValueError):
    """A media file without any audio track."""


def source_name(source: str | os.PathLike | bytes) -> str:
    return Path(source).name if isinstance(source, str | os.PathLike) else "the audio"


def decode_clip(
    source: str | os.PathLike | bytes, max_seconds: float, name: str | None = None
) -> tuple[np.ndarray, int]:
    """A whole clip as mono float32 at its own rate, and that rate (its samples not checked); see `read_audio`."""
    av = import_av()
    name = name or source_name(source)
    opened = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    pieces, samples = [], 0
    try:
        with av.open(opened) as container:
            if not container.streams.audio:
                raise NoAudioTrackError(f"{name} has no audio track.")
            rate = audio_rate(container)
            for _, piece in decode_audio(container):
                pieces.append(piece)
                samples += piece.size
                if samples > max_seconds * rate:
                    raise ValueError(f"{name} is longer than {max_seconds:g} s; give a shorter clip.")
    except (av.error.FFmpegError, UnicodeDecodeError, OSError):
        raise ValueError(f"{name}: not an audio file that can be read.") from None
    return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), rate
