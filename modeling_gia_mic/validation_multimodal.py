"""
The checks that read the values of a batch (NaN, mask contents, empty samples, label ranges). Each one copies a result
from the device to the host, which stalls a GPU; so they run where the data is on the host (the collator, once per
batch) and, in the model, only with `config.validate_inputs=True`. The model's own checks of shapes and types cost
nothing and always run.
"""

from collections.abc import Mapping

import torch

from .inputs_multimodal import MASK_NAMES


def has_non_finite(values: torch.Tensor) -> bool:
    """
    Whether any element is NaN or infinite. One reduction first (a sum is finite unless an element is not, or the sum
    overflows): on a training batch the element-wise test alone costs several full passes over the input.
    """
    return not torch.isfinite(values.sum()) and not torch.isfinite(values).all()


def check_input_values(inputs: Mapping[str, torch.Tensor | None]) -> None:
    """Finite floats; masks of 0 (padding) and 1 (content), with at least one valid position per sample."""
    for name, value in inputs.items():
        if value is None:
            continue
        if value.is_floating_point() and has_non_finite(value):
            raise ValueError(f"`{name}` contains NaN or infinite values.")
        if name not in MASK_NAMES:
            continue
        if value.dtype != torch.bool and ((value != 0) & (value != 1)).any():
            found = torch.unique(value[(value != 0) & (value != 1)])[:5].tolist()
            raise ValueError(f"`{name}` must hold only 0 (padding) and 1 (content); it also holds {found}.")
        empty = (value.sum(dim=-1) == 0).nonzero().flatten().tolist() if value.dim() == 2 else []
        if empty:
            raise ValueError(
                f"`{name}` of sample(s) {empty} is all padding (no valid position): drop the modality for the whole "
                "batch or give it real content."
            )


def check_label_values(labels: torch.Tensor, num_labels: int, regression: bool) -> None:
    """
    Class indices in range (or -100, ignored; not all of them), rows of class probabilities that sum to 1, or finite
    real targets. The shapes and types are the model's to check (`check_label_shape`).
    """
    if regression or labels.is_floating_point():
        if not torch.isfinite(labels).all():
            raise ValueError("`labels` contain NaN or infinite values.")
    if regression:
        return
    if labels.is_floating_point():  # soft targets
        rows = labels.sum(dim=-1)
        if (labels < 0).any() or not torch.allclose(rows, torch.ones_like(rows), atol=1e-3):
            raise ValueError(f"Each row of soft `labels` must sum to 1 (class probabilities); got {rows.tolist()}.")
        return
    valid = (labels >= 0) & (labels < num_labels)
    if not (valid | (labels == -100)).all():
        wrong = torch.unique(labels[~valid & (labels != -100)])[:5].tolist()
        raise ValueError(f"`labels` must be class indices in [0, {num_labels}) (or -100 to ignore); got {wrong}.")
    if not valid.any():
        raise ValueError("Every label of the batch is -100 (ignored): there is nothing to compute a loss from.")


def is_soft_target(labels: torch.Tensor, num_labels: int, regression: bool) -> bool:
    """(batch, num_labels) floats for a classifier: a probability per class (e.g. inputs that disagree)."""
    return not regression and labels.is_floating_point() and labels.dim() == 2 and labels.shape[-1] == num_labels > 1


def check_label_shape(labels: torch.Tensor, batch_size: int, num_labels: int, regression: bool) -> None:
    """One label per sample (or one row of class probabilities), of a type the task takes; reads no values."""
    if is_soft_target(labels, num_labels, regression):
        if labels.shape[0] != batch_size:
            raise ValueError(f"Soft `labels` must be ({batch_size}, {num_labels}) probabilities.")
        return
    if labels.dim() > 2 or labels.numel() != batch_size:
        raise ValueError(f"`labels` must have shape ({batch_size},), one per sample; got {tuple(labels.shape)}.")
    if regression and not (labels.is_floating_point() or labels.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"Regression `labels` must be numbers; got dtype {labels.dtype}.")
    if not regression and (labels.is_floating_point() or labels.dtype == torch.bool):
        raise ValueError(f"Classification `labels` must be integer class indices; got dtype {labels.dtype}.")
