"""Dynamic padding of multimodal samples into the batches `GiaMicModel.forward` takes."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from modeling_gia_mic.inputs_multimodal import PADDED_INPUTS, PaddedInput
from modeling_gia_mic.validation_multimodal import check_input_values, check_label_values


@dataclass
class MultimodalCollator:
    """
    Stack samples (dicts of lists, arrays or tensors) into a padded batch for GIA-MIC.

    Every model input in `PADDED_INPUTS` is padded to the longest sample along its time axis and gets its mask
    (a sample's own mask is kept and padded with zeros). `label_column` (or `labels`) becomes `labels` (float for
    regression; a row of class probabilities per sample stays one). Other keys are dropped only if listed in
    `ignore_keys`; an unknown key is an error, so nothing is lost silently.

    The batch's values are checked here, on the host, where it costs no device wait (the model reads no values unless
    `config.validate_inputs`): finite inputs, masks of 0/1 with a valid position per sample, and labels that are
    class indices below `num_labels` (or -100), class probabilities, or finite numbers.

    Args:
        pad_token_id: Padding value of `input_ids` (the tokenizer's `pad_token_id`).
        regression: Whether labels are real-valued.
        label_column: The dataset column holding the label.
        ignore_keys: Columns that are not given to the model: metadata (ids, transcripts, ...) and the inputs of
            modalities left out (`--modalities`).
        num_labels: The model's number of classes, to check class indices against (unchecked when not given).
    """

    pad_token_id: int = 0
    regression: bool = False
    label_column: str = "label"
    ignore_keys: Sequence[str] = ()
    num_labels: int | None = None

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not samples:
            raise ValueError("Cannot collate an empty list of samples.")
        self._check_keys(samples)
        batch = {}
        for spec in PADDED_INPUTS:
            if spec.name in samples[0] and spec.name not in self.ignore_keys:
                batch[spec.name], mask = self._pad(samples, spec)
                if spec.mask is not None:
                    batch[spec.mask] = mask
        label_key = next((key for key in (self.label_column, "labels") if key in samples[0]), None)
        if label_key is not None:
            values = [s[label_key] for s in samples]
            if np.ndim(values[0]) == 1:  # class probabilities (soft targets)
                batch["labels"] = torch.tensor(np.asarray(values, dtype=np.float32))
            else:
                dtype = torch.float32 if self.regression else torch.long
                batch["labels"] = torch.tensor([float(value) for value in values]).to(dtype)
        check_input_values({name: value for name, value in batch.items() if name != "labels"})
        if "labels" in batch and (self.num_labels is not None or self.regression or batch["labels"].dim() == 2):
            check_label_values(batch["labels"], self.num_labels or batch["labels"].shape[-1], self.regression)
        return batch

    def _check_keys(self, samples: list[dict[str, Any]]) -> None:
        known = {spec.name for spec in PADDED_INPUTS} | {spec.mask for spec in PADDED_INPUTS}
        known |= {self.label_column, "labels"}
        unknown = set(samples[0]) - known - set(self.ignore_keys)
        if unknown:
            raise ValueError(
                f"Sample 0 has keys that are not GIA-MIC inputs: {sorted(unknown)}. Remove those columns or name them "
                "in `ignore_keys`."
            )
        for index, sample in enumerate(samples[1:], start=1):
            if set(sample) != set(samples[0]):
                difference = sorted(set(sample) ^ set(samples[0]))
                raise ValueError(
                    f"Sample {index} has different inputs than sample 0 (differing: {difference}); a batch must carry "
                    "the same modalities for every sample."
                )

    def _pad(self, samples: list[dict[str, Any]], spec: PaddedInput) -> tuple[torch.Tensor, torch.Tensor]:
        values = [_as_tensor(s[spec.name]) for s in samples]
        pad_value = self.pad_token_id if spec.name == "input_ids" else 0
        lengths = [v.shape[spec.axis] for v in values]
        longest = max(lengths)
        padded = []
        for index, value in enumerate(values):
            if value.dim() != values[0].dim() or _other_dims(value, spec.axis) != _other_dims(values[0], spec.axis):
                raise ValueError(
                    f"`{spec.name}` of sample {index} has shape {tuple(value.shape)}, which does not fit sample 0's "
                    f"{tuple(values[0].shape)} apart from the padded axis {spec.axis}."
                )
            shape = list(value.shape)
            shape[spec.axis] = longest - lengths[index]
            padded.append(torch.cat([value, value.new_full(shape, pad_value)], dim=spec.axis))
        masks = []
        for sample, length in zip(samples, lengths):
            own = sample.get(spec.mask) if spec.mask else None
            mask = torch.as_tensor(np.asarray(own), dtype=torch.long) if own is not None else torch.ones(length)
            masks.append(torch.nn.functional.pad(mask.long(), (0, longest - length)))
        return torch.stack(padded), torch.stack(masks)


def _as_tensor(value: Any) -> torch.Tensor:
    """Lists from `datasets` arrive as float64/int64: floats become float32, the model's dtype."""
    tensor = torch.as_tensor(np.asarray(value))
    return tensor.float() if tensor.is_floating_point() else tensor


def _other_dims(value: torch.Tensor, axis: int) -> tuple[int, ...]:
    shape = list(value.shape)
    del shape[axis]
    return tuple(shape)
