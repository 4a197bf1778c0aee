"""`gia-mic evaluate`: a saved model's metrics on a split, and optionally its answer for every item (a CSV)."""

import csv
import dataclasses
import io
import tempfile
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from .folders import write_file
from .training import (
    DataArguments,
    ModelArguments,
    build_model_and_collator,
    load_dataset_folder,
    predict,
    saved_config,
    split_metrics,
    with_numpy_features,
)


# The first columns of a predictions file: how `claim_file` knows one it may replace.
PREDICTION_HEADERS = ("id,label,", "id,prediction")


def evaluate_checkpoint(
    model_args: ModelArguments,
    data_args: DataArguments,
    split: str,
    batch_size: int = 32,
    predictions: str | None = None,
) -> dict[str, Any]:
    """
    Metrics of the saved `model_args.model` on one split of the dataset. With `predictions`, a CSV there: one row per
    item, `id`, the top `label` and each label's probability (a regression model: `id`, `prediction`).
    """
    dataset = with_numpy_features(load_dataset_folder(data_args.dataset))
    if split not in dataset:
        raise ValueError(f"No split {split!r} in {data_args.dataset}; it has {list(dataset)}.")
    if data_args.problem_type is None:  # the model knows whether its labels are classes or scores
        data_args = dataclasses.replace(data_args, problem_type=saved_config(model_args.model).problem_type)
    model, collator, _ = build_model_and_collator(model_args, data_args, dataset[split])
    with tempfile.TemporaryDirectory(prefix="gia-mic-evaluate-") as scratch:  # nothing written beside the model
        args = TrainingArguments(
            output_dir=scratch, per_device_eval_batch_size=batch_size, report_to="none", remove_unused_columns=False
        )
        trainer = Trainer(model=model, args=args, data_collator=collator)
        logits, labels = predict(trainer, dataset[split])
    if predictions is not None:
        write_file(predictions, predictions_csv(dataset[split], logits, model.config))
    return split_metrics(model, logits, labels, data_args.metrics)


def item_ids(split: Dataset) -> list[str]:
    """Each row's `id`, or its position where the dataset has no id column."""
    return [str(i) for i in split["id"]] if "id" in split.column_names else [str(i) for i in range(split.num_rows)]


def predictions_csv(split: Dataset, logits: np.ndarray, config) -> str:
    """One row per item: its id, then the top label and every label's probability (softmax), or the predicted score."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    ids = item_ids(split)
    if config.problem_type == "regression":
        writer.writerow(["id", "prediction"])
        writer.writerows([i, f"{value:.6f}"] for i, value in zip(ids, logits.reshape(-1)))
        return buffer.getvalue()
    names = [config.id2label[i] for i in range(config.num_labels)]
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    writer.writerow(["id", "label", *names])
    for item, row in zip(ids, probabilities):
        writer.writerow([item, names[int(row.argmax())], *(f"{p:.6f}" for p in row)])
    return buffer.getvalue()
