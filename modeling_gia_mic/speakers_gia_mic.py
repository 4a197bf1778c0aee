"""
Who speaks when. Resemblyzer's GE2E speaker encoder (Apache-2.0: a 3-layer LSTM over 40 mel bands, 256-d embeddings,
Wan et al. 2018) embeds short windows of a recording's speech; the windows are clustered into speakers by
average-linkage clustering of their cosine similarities, the number of speakers found from how alike their voices are
unless given; speech is then cut where the speaker changes. Only torch, numpy and transformers' audio utilities: it
runs from a saved model folder (`speakers/`).
"""

import importlib.util
import itertools
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function


SAMPLING_RATE = 16000
SPEAKERS_FOLDER = "speakers"
SPEAKERS_FILE = "model.safetensors"
MEL_BANDS, FRAME, HOP = 40, 400, 160  # 25-ms windows every 10 ms, as the encoder was trained
TARGET_DBFS = -30.0  # the encoder's training loudness: quieter windows are raised to it


@dataclass(frozen=True)
class DiarizationOptions:
    """How speech is cut into speaker windows and how many speakers are looked for."""

    window_s: float = 1.6  # the encoder's training length
    hop_s: float = 0.8
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int = 8
    min_silhouette: float = 0.1  # the best-separated split into speakers must be at least this clear
    min_speaker_s: float = 2.0  # a "speaker" heard for less is windows straddling two voices
    min_turn_s: float = 0.6  # a change of speaker shorter than this is taken for the neighbours' speaker
    names: tuple[str, ...] = ()  # the speakers' names in order of first appearance (the rest SPEAKER_nn)
    face: Literal["speaker", "largest"] = "speaker"  # in a video, whose face each utterance reads

    def __post_init__(self):
        for name in ("window_s", "hop_s", "min_speaker_s", "min_turn_s", "min_silhouette"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"DiarizationOptions.{name} must be a number; got {value!r}.")
        if self.window_s <= 0 or self.hop_s <= 0:
            raise ValueError(
                f"DiarizationOptions: window_s and hop_s must be positive; got {self.window_s}, {self.hop_s}."
            )
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"DiarizationOptions.{name} must be a whole number, 1 or more; got {value!r}.")
        if self.min_speakers > self.max_speakers:
            raise ValueError(
                f"DiarizationOptions: min_speakers {self.min_speakers} > max_speakers {self.max_speakers}."
            )
        names = self.names
        if isinstance(names, str) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"DiarizationOptions.names takes a tuple of names; got {names!r}.")
        if len(set(names)) < len(names) or any(re.fullmatch(r"SPEAKER_\d+", n) for n in names):
            raise ValueError(
                f"DiarizationOptions.names must differ from each other and from SPEAKER_nn; got {names!r}."
            )
        if self.face not in ("speaker", "largest"):
            raise ValueError(f'DiarizationOptions.face takes "speaker" or "largest"; got {self.face!r}.')
        if self.num_speakers is not None and len(names) > self.num_speakers:
            raise ValueError(f"{len(names)} speaker names were given for {self.num_speakers} speakers.")


def diarization_options(value) -> DiarizationOptions | None:
    """What a pipeline call's `speakers=` gives: False/None (no), True (found), a number of speakers, a dict of
    `DiarizationOptions` fields, or the options themselves (from this module or a model folder's copy of it)."""
    if value is None or value is False:
        return None
    if value is True:
        return DiarizationOptions()
    if isinstance(value, int) and value >= 1:
        return DiarizationOptions(num_speakers=value)
    if isinstance(value, dict) and isinstance(value.get("names"), list):
        value = {**value, "names": tuple(value["names"])}
    if isinstance(value, dict) or hasattr(value, "__dataclass_fields__"):
        fields = (
            value if isinstance(value, dict) else {name: getattr(value, name) for name in value.__dataclass_fields__}
        )
        unknown = set(fields) - set(DiarizationOptions.__dataclass_fields__)
        if not unknown:
            return DiarizationOptions(**fields)
    raise ValueError(
        "`speakers` takes True, a number of speakers (1 or more), or DiarizationOptions (or a dict of its fields); "
        f"got {value!r}."
    )


class SpeakerEncoder(nn.Module):
    """GE2E: mel frames -> LSTM -> the last hidden state -> linear -> ReLU -> unit length."""

    def __init__(self, hidden_size: int = 256, embedding_size: int = 256, layers: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(MEL_BANDS, hidden_size, layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, embedding_size)
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=FRAME // 2 + 1,
            num_mel_filters=MEL_BANDS,
            min_frequency=0.0,
            max_frequency=SAMPLING_RATE / 2,
            sampling_rate=SAMPLING_RATE,
            norm="slaney",
            mel_scale="slaney",
        )
        self.window = window_function(FRAME, "hann")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None) -> "SpeakerEncoder":
        """From a model folder or Hub repo with `speakers/model.safetensors`, else from the installed `resemblyzer`
        package's own file (read, never imported: its librosa and webrtcvad are not needed)."""
        from safetensors.torch import load_file
        from transformers.utils import cached_file

        encoder = cls()
        path = None
        if name_or_path is not None:
            path = cached_file(
                str(name_or_path),
                SPEAKERS_FILE,
                subfolder=SPEAKERS_FOLDER,
                _raise_exceptions_for_missing_entries=False,
            )
        if path is not None:
            encoder.load_state_dict(load_file(path))
        elif (packaged := packaged_speaker_file()) is not None:
            encoder.load_state_dict(resemblyzer_weights(packaged))
        else:
            raise FileNotFoundError(
                "Telling speakers apart needs Resemblyzer's encoder: `pip install --no-deps resemblyzer==0.1.4`, or a "
                f"model folder with {SPEAKERS_FOLDER}/{SPEAKERS_FILE}."
            )
        return encoder.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        embeddings = torch.relu(self.linear(hidden[-1]))
        return embeddings / embeddings.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def mel(self, waveform: np.ndarray) -> np.ndarray:
        """Power mel frames (frames, 40) of a 16-kHz window, raised to the training loudness if quieter."""
        rms = float(np.sqrt(np.mean(waveform.astype(np.float64) ** 2))) if waveform.size else 0.0
        if rms > 0:
            waveform = waveform * max(1.0, 10 ** (TARGET_DBFS / 20) / rms)
        power = spectrogram(
            waveform.astype(np.float64),
            self.window,
            FRAME,
            HOP,
            power=2.0,
            center=True,
            pad_mode="constant",
            mel_filters=self.mel_filters,
        )
        return power.T.astype(np.float32)

    @torch.inference_mode()
    def embed(self, windows: Iterable[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """One embedding per window (all of one length), in batches: (windows, 256)."""
        found, batch = [], []
        for window in windows:
            batch.append(self.mel(window))
            if len(batch) == batch_size:
                found.append(self(torch.from_numpy(np.stack(batch))).numpy())
                batch = []
        if batch:
            found.append(self(torch.from_numpy(np.stack(batch))).numpy())
        return np.concatenate(found) if found else np.zeros((0, self.linear.out_features), np.float32)


def packaged_speaker_file() -> Path | None:
    """Resemblyzer's `pretrained.pt` inside the installed package, found without importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "pretrained.pt"
    return path if path.is_file() else None


def resemblyzer_weights(path: Path) -> dict[str, torch.Tensor]:
    """The encoder's weights in Resemblyzer's `pretrained.pt` (its training-only similarity scale left out)."""
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    return {name: value for name, value in state.items() if not name.startswith("similarity")}


def recording_windows(path: str, windows: list[tuple[float, float]], window_s: float) -> Iterator[np.ndarray]:
    """
    Each window's samples (in time order), from one streaming decode of the recording's audio at 16 kHz: only the
    audio from the earliest window still to come is held, and the decoding stops after the last window. Where the
    audio cannot be decoded further (a damaged file), the windows beyond are silence, as the speech pass found none.
    """
    from .audio_gia_mic import decode_audio, import_av

    av = import_av()
    length, pending = round(window_s * SAMPLING_RATE), list(windows)
    held, held_from = np.zeros(0, np.float32), 0  # samples from `held_from` on
    with av.open(path) as container:
        try:
            for start, samples in decode_audio(container, SAMPLING_RATE):
                if not held.size:
                    held_from = round(start * SAMPLING_RATE)
                held = np.concatenate([held, samples])
                while pending and round(pending[0][0] * SAMPLING_RATE) + length <= held_from + held.size:
                    yield window_at(held, held_from, pending.pop(0)[0], length)
                if not pending:
                    return
                first = max(round(pending[0][0] * SAMPLING_RATE), held_from)
                held, held_from = held[first - held_from :], first
        except av.error.FFmpegError:
            pass  # the speech pass stopped at the same place and says so in the notes
    for start, _ in pending:  # windows running past the end of what could be decoded
        yield window_at(held, held_from, start, length)


def window_at(held: np.ndarray, held_from: int, start: float, length: int) -> np.ndarray:
    """`length` samples from `start` seconds, zero where the audio held does not reach."""
    first = round(start * SAMPLING_RATE) - held_from
    piece = held[max(first, 0) : max(first + length, 0)]
    before = max(-first, 0)
    return np.pad(piece, (before, length - piece.size - before))


def window_spans(spans: list[tuple[float, float]], options: DiarizationOptions) -> list[tuple[float, float]]:
    """Windows of `window_s` every `hop_s` inside each speech span (one centred window for a shorter span)."""
    found = []
    for start, end in spans:
        if end - start <= options.window_s:
            middle = (start + end) / 2
            found.append((middle - options.window_s / 2, middle + options.window_s / 2))
            continue
        count = math.floor((end - start - options.window_s) / options.hop_s + 1e-9) + 1
        last = start + (count - 1) * options.hop_s
        found += [(start + i * options.hop_s, start + i * options.hop_s + options.window_s) for i in range(count)]
        if end - (last + options.window_s) > options.hop_s / 2:
            found.append((end - options.window_s, end))
    return [(round(a, 3), round(b, 3)) for a, b in found]


def cut_windows(audio: np.ndarray, windows: list[tuple[float, float]], window_s: float) -> Iterator[np.ndarray]:
    """Each window's samples (zero-padded at the recording's edges) from a 16-kHz waveform held whole."""
    length = round(window_s * SAMPLING_RATE)
    return (window_at(audio, 0, start, length) for start, _ in windows)


def speaker_clusters(
    embeddings: np.ndarray, options: DiarizationOptions, seconds: np.ndarray | None = None
) -> np.ndarray:
    """
    A speaker index per window, in order of first appearance. Average-linkage clustering of the windows' cosine
    similarities gives a partition for every number of speakers; `num_speakers` picks one, else the count between
    `min_speakers` and `max_speakers` whose partition is best separated (mean silhouette), one speaker where even that
    is under `min_silhouette`. A cluster with under `min_speaker_s` of speech (`seconds` per window) joins its
    closest: windows that straddle two voices.
    """
    count = len(embeddings)
    seconds = np.ones(count) if seconds is None else np.asarray(seconds, dtype=float)
    least = min(count, max(1, options.num_speakers or options.min_speakers))
    most = min(count, options.num_speakers or options.max_speakers)
    if count < 2 or most <= 1:
        return np.zeros(count, dtype=int)
    similarity = embeddings.astype(np.float64) @ embeddings.T.astype(np.float64)
    partitions = {
        speakers: without_brief_speakers(embeddings, labels, seconds, options, least)
        for speakers, labels in average_linkage(similarity, most).items()
        if speakers >= least
    }
    if options.num_speakers is not None:
        return first_appearance_order(partitions[min(partitions)])
    separation = {k: silhouette(similarity, labels) for k, labels in partitions.items() if k >= 2}
    best = max(separation, key=separation.get, default=1)
    if best == 1 or (least == 1 and separation[best] < options.min_silhouette):
        return np.zeros(count, dtype=int)
    return first_appearance_order(partitions[best])


def average_linkage(similarity: np.ndarray, most: int) -> dict[int, np.ndarray]:
    """The partitions into `most`, `most - 1`, ... 1 clusters met while merging the two clusters whose windows are
    most alike on average (`similarity`: the windows' cosine similarities), from one window per cluster."""
    similarity = similarity.copy()
    np.fill_diagonal(similarity, -np.inf)
    count = len(similarity)
    sizes, labels = np.ones(count), np.arange(count)
    partitions = {count: labels.copy()} if count <= most else {}
    for clusters in range(count - 1, 0, -1):
        first, second = np.unravel_index(np.argmax(similarity), similarity.shape)
        total = sizes[first] + sizes[second]
        merged = (similarity[first] * sizes[first] + similarity[second] * sizes[second]) / total
        similarity[first], similarity[:, first] = merged, merged
        similarity[first, first] = -np.inf
        similarity[second], similarity[:, second] = -np.inf, -np.inf
        sizes[first] = total
        labels[labels == second] = first
        if clusters <= most:
            partitions[clusters] = labels.copy()
    return partitions


def silhouette(similarity: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette under cosine distance: how much nearer each window is to its own cluster than to the next."""
    names = sorted(set(labels.tolist()))
    if len(names) < 2:
        return -1.0
    distance = 1.0 - similarity
    counts = np.array([(labels == name).sum() for name in names])
    own = np.searchsorted(names, labels)
    mean_to = np.stack([distance[:, labels == name].mean(1) for name in names], axis=1)
    rows = np.arange(len(labels))
    inner = mean_to[rows, own] * counts[own] / np.maximum(counts[own] - 1, 1)  # without the window itself
    mean_to[rows, own] = np.inf
    nearest = mean_to.min(1)
    scores = np.where(counts[own] > 1, (nearest - inner) / np.maximum(np.maximum(inner, nearest), 1e-12), 0.0)
    return float(scores.mean())


def without_brief_speakers(
    embeddings: np.ndarray, labels: np.ndarray, seconds: np.ndarray, options: DiarizationOptions, least: int
) -> np.ndarray:
    """Clusters with less speech than `min_speaker_s` given, window by window, to the most alike lasting cluster
    (keeping at least `least` clusters)."""
    labels = labels.copy()
    speech = {label: seconds[labels == label].sum() for label in set(labels.tolist())}
    ranked = sorted(speech, key=speech.get, reverse=True)
    lasting = [label for label in ranked if speech[label] >= options.min_speaker_s] or ranked[:1]
    lasting = ranked[: max(len(lasting), min(least, len(ranked)))]
    brief = ~np.isin(labels, lasting)
    if brief.any():
        means = normalized_rows(np.array([embeddings[labels == label].mean(0) for label in lasting]))
        labels[brief] = np.array(lasting)[(embeddings[brief] @ means.T).argmax(1)]
    return labels


def normalized_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-10)


def first_appearance_order(labels: np.ndarray) -> np.ndarray:
    order = {label: index for index, label in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[label] for label in labels.tolist()], dtype=int)


def speaker_turns(
    spans: list[tuple[float, float]],
    windows: list[tuple[float, float]],
    speakers: np.ndarray,
    options: DiarizationOptions,
    step: float = 0.05,
) -> list[tuple[float, float, int]]:
    """
    Each speech span cut where its speaker changes: every `step` takes the speaker of the window centred nearest to
    it; a run shorter than `min_turn_s` takes its neighbours'. Returns (start, end, speaker) turns.
    """
    if not windows:
        return []
    centres = np.array([(a + b) / 2 for a, b in windows])
    turns = []
    for start, end in spans:
        times = np.arange(start, end, step) + step / 2
        inside = (centres >= start - options.window_s / 2) & (centres <= end + options.window_s / 2)
        candidates = np.flatnonzero(inside) if inside.any() else np.arange(len(centres))
        nearest = candidates[np.abs(centres[candidates][None] - times[:, None]).argmin(1)]
        runs = smoothed_runs(speakers[nearest].tolist(), max(1, round(options.min_turn_s / step)))
        position = start
        for speaker, length in runs:
            stop = min(end, position + length * step)
            turns.append((round(position, 3), round(stop, 3), speaker))
            position = stop
        if turns and turns[-1][1] < end:
            turns[-1] = (turns[-1][0], round(end, 3), turns[-1][2])
    return turns


def smoothed_runs(sequence: list[int], shortest: int) -> list[tuple[int, int]]:
    """(value, length) runs; a run shorter than `shortest` goes to its longer neighbour, equal neighbours joined."""
    runs = [[value, sum(1 for _ in group)] for value, group in itertools.groupby(sequence)]
    while len(runs) > 1:
        index = min(range(len(runs)), key=lambda i: runs[i][1])
        if runs[index][1] >= shortest:
            break
        neighbours = [i for i in (index - 1, index + 1) if 0 <= i < len(runs)]
        target = max(neighbours, key=lambda i: runs[i][1])
        runs[target][1] += runs[index][1]
        del runs[index]
        joined = [runs[0]]
        for value, length in runs[1:]:
            if value == joined[-1][0]:
                joined[-1][1] += length
            else:
                joined.append([value, length])
        runs = joined
    return [(value, length) for value, length in runs]


def diarize(
    audio: np.ndarray,
    spans: list[tuple[float, float]],
    encoder: SpeakerEncoder,
    options: DiarizationOptions = DiarizationOptions(),
) -> list[tuple[float, float, int]]:
    """Speaker turns (start, end, speaker index in order of first appearance) of a 16-kHz recording's speech spans."""
    windows = window_spans(spans, options)
    return turns_of(spans, windows, encoder.embed(cut_windows(audio, windows, options.window_s)), options)


def diarize_recording(
    path: str, spans: list[tuple[float, float]], encoder: SpeakerEncoder, options: DiarizationOptions
) -> list[tuple[float, float, int]]:
    """`diarize` of a recording's file, its audio streamed (decoded once more, held a window at a time)."""
    windows = window_spans(spans, options)
    return turns_of(spans, windows, encoder.embed(recording_windows(path, windows, options.window_s)), options)


def turns_of(
    spans: list[tuple[float, float]], windows: list, embeddings: np.ndarray, options: DiarizationOptions
) -> list[tuple[float, float, int]]:
    speakers = speaker_clusters(embeddings, options, np.full(len(windows), options.hop_s))
    return speaker_turns(spans, windows, speakers, options)


def speaker_names(turns: list[tuple[float, float, int]], names: tuple[str, ...] = ()) -> dict[int, str]:
    """Each speaker's name: the given `names` in order of first appearance, then `SPEAKER_00`, `SPEAKER_01`, ..."""
    return {k: names[k] if k < len(names) else f"SPEAKER_{k:02d}" for k in sorted({s for *_, s in turns})}


def speaker_summary(segments: list[dict], labels: list[str]) -> list[dict]:
    """
    Per speaker, in order of first appearance: speaking time, utterances, the share of their speaking time in each
    predicted emotion, their most frequent emotion (by time), the moments their emotion changed and, in a video whose
    utterances name their face (`face_id`), the face read for most of their speaking time.
    """
    found: dict[str, dict] = {}
    faces = any("face_id" in segment for segment in segments)
    for segment in segments:
        if "speaker" not in segment:
            continue
        seconds = segment["end"] - segment["start"]
        own = found.setdefault(
            segment["speaker"],
            {
                "speaker": segment["speaker"],
                "seconds": 0.0,
                "utterances": 0,
                "time": dict.fromkeys(labels, 0.0),
                "changes": [],
                "last": None,
                "faces": {},
            },
        )
        if segment.get("face_id") is not None:
            own["faces"][segment["face_id"]] = own["faces"].get(segment["face_id"], 0.0) + seconds
        own["seconds"] += seconds
        own["utterances"] += 1
        if segment["label"] is not None:
            own["time"][segment["label"]] += seconds
            if own["last"] is not None and own["last"] != segment["label"]:
                own["changes"].append({"time": segment["start"], "from": own["last"], "to": segment["label"]})
            own["last"] = segment["label"]
    summary = []
    for own in found.values():
        heard = sum(own["time"].values())
        shares = {label: round(t / heard, 4) if heard else 0.0 for label, t in own["time"].items()}
        summary.append(
            {
                "speaker": own["speaker"],
                "seconds": round(own["seconds"], 3),
                "utterances": own["utterances"],
                "emotion": max(own["time"], key=own["time"].get) if heard else None,
                "shares": shares,
                "changes": own["changes"],
                **({"face_id": max(own["faces"], key=own["faces"].get, default=None)} if faces else {}),
            }
        )
    return summary
