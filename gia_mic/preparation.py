"""
How a dataset's raw rows become model inputs: through the model's own [`GiaMicProcessor`], the one saved with it and
used by the pipeline, so an item is prepared for training exactly as it is served.
"""

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer

from modeling_gia_mic import GiaMicProcessor
from modeling_gia_mic.audio_gia_mic import SAMPLING_RATE, read_audio
from modeling_gia_mic.processing_gia_mic import NoFaceFoundError, cut_to_faces, uniform_frame_indices
from modeling_gia_mic.validation_multimodal import check_input_values


# A new model's text is cut at this many tokens (a saved model keeps its processor's setting).
DEFAULT_MAX_TEXT_LENGTH = 128


def processor_for_encoders(encoders: dict[str, str], **settings) -> GiaMicProcessor:
    """The processor of a model on these encoders (a Hub id or folder per modality) with `settings` of its own."""
    return GiaMicProcessor(
        tokenizer=AutoTokenizer.from_pretrained(encoders["text"]) if "text" in encoders else None,
        feature_extractor=AutoFeatureExtractor.from_pretrained(encoders["audio"]) if "audio" in encoders else None,
        image_processor=(
            AutoImageProcessor.from_pretrained(encoders["vision"], backend="pil") if "vision" in encoders else None
        ),
        **settings,
    )


def saved_processor(folder: str, modalities: Sequence[str]) -> GiaMicProcessor:
    """A saved model's processor; a folder with only its parts (an older save) gets one made of them."""
    if (Path(folder) / "processor_config.json").is_file():
        return GiaMicProcessor.from_pretrained(folder)
    return processor_for_encoders({m: folder for m in modalities})


def row_name(row: dict[str, Any], index: int) -> str:
    """A row's `id`, or where the dataset has none, its place in its batch."""
    return str(row["id"]) if "id" in row else f"row {index} of a batch (the dataset has no id column)"


def audio_of(row: dict[str, Any], index: int):
    """
    A row's audio read as the pipeline reads a file: an `Audio(decode=False)` cell's bytes, else the file it names, or
    the file a plain text cell names.
    """
    cell = row["audio"]
    if isinstance(cell, str):
        cell = {"path": cell}
    if not isinstance(cell, dict | None):
        raise ValueError(
            f"The audio of {row_name(row, index)} is a {type(cell).__name__}: expected a file's path or an "
            "Audio(decode=False) cell (bytes and path)."
        )
    source = (cell or {}).get("bytes") or (cell or {}).get("path")
    if not source:
        raise ValueError(f"The audio of {row_name(row, index)} has neither bytes nor a path.")
    return read_audio(source, math.inf, f"the audio of {row_name(row, index)}")


@dataclass
class RawBatchCollator:
    """
    Raw rows (text, `Audio(decode=False)` cells, frames or an image) -> a padded batch, through `processor` (audio read
    as the pipeline reads a file; faces cut out row by row first, as the pipeline cuts them). The batch's values are
    checked here, on the host: the model reads none. A row in whose pictures the processor finds no face is left out
    of the batch (as the pipeline has nothing to answer for a face that is not there) and named in `faceless`; the
    callers report them.
    """

    processor: GiaMicProcessor
    modalities: Sequence[str]
    label_column: str = "label"
    regression: bool = False
    faceless: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.batch_processor = copy.copy(self.processor)  # faces are cut row by row, before batching
        self.batch_processor.detect_faces = False

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "vision" in self.modalities and not all("pictures" in row for row in rows):
            rows = self.with_pictures(rows)
        if not rows:
            raise NoFaceFoundError("No face was found in any picture of a batch; see the rows left out.")
        inputs: dict[str, Any] = {}
        if "text" in self.modalities:  # a row without transcript is the empty sentence (as in MMSA)
            inputs.update(text=[row["text"] for row in rows], allow_empty_text=True)
        if "audio" in self.modalities:
            waveforms = [audio_of(row, i) for i, row in enumerate(rows)]
            inputs.update(audio=waveforms, sampling_rate=SAMPLING_RATE)
        if "vision" in self.modalities:
            inputs["images"] = [row["pictures"] for row in rows]
        batch = dict(self.batch_processor(**inputs)) if rows else {}
        check_input_values(batch)
        labels = [row[self.label_column] for row in rows]
        batch["labels"] = torch.tensor(labels, dtype=torch.float32 if self.regression else torch.long)
        return batch

    def with_pictures(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """
        Each row with its `pictures`: its frames (or image), cut to their faces where the processor detects faces
        (rows without a face are left out, named in `faceless`).
        """
        kept = []
        for index, row in enumerate(rows):
            frames = row["frames"] if "frames" in row else [row["image"]]
            frames = [frames[i] for i in uniform_frame_indices(len(frames), self.processor.num_frames)]
            if self.processor.detect_faces:
                try:
                    frames = cut_to_faces([frames])[0]
                except NoFaceFoundError:
                    self.faceless.append(row_name(row, index))
                    continue
            kept.append({**row, "pictures": frames})
        return kept
