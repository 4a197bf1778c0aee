"""
Calibrated probabilities: a temperature per set of inputs given (each alone, each pair, all), fitted on validation
data after training by the least negative log-likelihood (temperature scaling, Guo et al. 2017), stored in the
config's `temperatures`; the expected calibration error that measures it; and the top probability under which an
answer is "not sure" (`uncertain_below`).
"""

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from datasets import Dataset
from transformers import Trainer

from modeling_gia_mic import MultimodalForEmotionRecognition
from modeling_gia_mic.inputs_multimodal import MODALITY_INPUTS


# Temperatures tried, evenly spaced in log scale: a grid is exact to 1 % and needs no optimiser's settings.
TEMPERATURE_GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 601))
CALIBRATION_BINS = 15


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """
    Over `bins` equal-width bins of the top probability ((0, 1/bins], ...): the mean over items of the gap between
    each bin's accuracy and its mean top probability, weighted by the bin's share of the items.
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, adjustment: np.ndarray | float = 0.0) -> float:
    """
    The temperature of `TEMPERATURE_GRID` whose probabilities give the labels the least negative log-likelihood. The
    model's logit `adjustment` (its priors' correction, added after the temperature) is part of those probabilities.
    """
    labels = np.asarray(labels).astype(int)
    rows = np.arange(len(labels))
    losses = [-np.log(softmax(logits / t + adjustment)[rows, labels] + 1e-12).mean() for t in TEMPERATURE_GRID]
    return float(TEMPERATURE_GRID[int(np.argmin(losses))])


def uncertainty_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """
    The largest top probability under which the answers were right less than half the time: the answers ranked by
    their top probability, the longest run of least confident ones whose accuracy is under 1/2 ends there (0 where
    no such run exists: no answer is "not sure").
    """
    confidence = probabilities.max(axis=1)
    order = np.argsort(confidence, kind="stable")
    correct = (probabilities.argmax(axis=1) == np.asarray(labels))[order]
    accuracy = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    ranked = confidence[order]
    group_ends = np.append(ranked[:-1] < ranked[1:], True)  # answers of equal top probability fall on one side
    below = np.flatnonzero((accuracy < 0.5) & group_ends)
    if below.size == 0:
        return 0.0
    last = int(below[-1])
    return float(ranked[last + 1] if last + 1 < len(ranked) else np.nextafter(ranked[last], 1.0))


def input_sets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty set of the modalities, in their order: each alone, each pair, ..., all."""
    return [s for size in range(1, len(modalities) + 1) for s in itertools.combinations(modalities, size)]


def only(batch: dict[str, torch.Tensor], kept: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The batch without the inputs of the modalities not `kept`."""
    dropped = {
        name
        for modality, spec in MODALITY_INPUTS.items()
        if modality not in kept
        for name in (*(n for raw in spec.raw for n in (raw.name, raw.mask)), spec.features.name, spec.features.mask)
    }
    return {name: value for name, value in batch.items() if name not in dropped}


def served_adjustment(model: MultimodalForEmotionRecognition) -> np.ndarray | float:
    """The logit adjustment the model adds to its outputs (its priors' correction; 0 without one)."""
    return model.logit_adjustment.float().cpu().numpy() if model.config.target_prior is not None else 0.0


def split_adjustment(model: MultimodalForEmotionRecognition, labels: np.ndarray) -> np.ndarray | float:
    """
    The correction under which a split's labels are drawn: from the model's training prior to the split's own class
    frequencies (a validation split need not follow the target prior). 0 for a model without priors: its outputs are
    taken as they are.
    """
    config = model.config
    if config.target_prior is None:
        return 0.0
    names = [config.id2label[i] for i in range(config.num_labels)]
    learned = np.array([config.training_prior[n] for n in names]) if config.training_prior else 1 / len(names)
    frequencies = np.bincount(labels, minlength=len(names)) / len(labels)
    return np.log(np.maximum(frequencies, 1e-12)) - np.log(learned)


def input_set_logits(trainer: Trainer, split, kept: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The model's logits for `split` given only the `kept` inputs, before its priors' correction, and the labels."""
    collator = trainer.data_collator
    trainer.data_collator = lambda rows: only(collator(rows), kept)
    try:
        logits, labels = predict(trainer, split)
    finally:
        trainer.data_collator = collator
    return logits - served_adjustment(trainer.model), labels.astype(int)


def predict(trainer: Trainer, split: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """A split's logits (the model's first output; the others are its explanations) and labels, through `trainer`."""
    output = trainer.predict(split)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return np.asarray(logits), np.asarray(output.label_ids)


def calibrate_input_set(logits: np.ndarray, labels: np.ndarray, model) -> tuple[float, float, float, np.ndarray]:
    """
    One set of inputs: the temperature fitted under the split's own prior correction, and with that correction (the
    probabilities the model gives where the classes are as frequent as in the split) the ECE before and after the
    temperature and the probabilities after it.
    """
    own = split_adjustment(model, labels)
    temperature = fit_temperature(logits, labels, own)
    calibrated = softmax(logits / temperature + own)
    before = expected_calibration_error(softmax(logits + own), labels)
    return temperature, before, expected_calibration_error(calibrated, labels), calibrated


def fit_temperatures(
    trainer: Trainer, split: Dataset, modalities: Sequence[str]
) -> dict[str, tuple[float, float, float]]:
    """
    Set `temperatures` of the trainer's model from `split`, for every set of the `modalities` the split has;
    returns each set's (temperature, ECE before, ECE after).
    """
    model: MultimodalForEmotionRecognition = trainer.model
    model.config.temperatures = None
    fitted = {}
    for kept in input_sets(modalities):
        temperature, before, after, _ = calibrate_input_set(*input_set_logits(trainer, split, kept), model)
        fitted["+".join(kept)] = (temperature, before, after)
    model.config.temperatures = {key: value[0] for key, value in fitted.items()}
    return fitted
