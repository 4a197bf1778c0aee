"""`gia-mic evaluate`: a saved model's metrics on a split, and optionally its answer for every item (a CSV)."""

import csv
import dataclasses
import io
import tempfile
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from .calibration import predict, softmax
from .folders import write_file
from .training import (
    DataArguments,
    ModelArguments,
    build_model_and_collator,
    load_dataset_folder,
    saved_config,
    split_metrics,
    with_numpy_features,
)


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
    model, collator, _ = build_model_and_collator(model_args, data_args, dataset[split], training=False)
    with tempfile.TemporaryDirectory(prefix="gia-mic-evaluate-") as scratch:  # nothing written beside the model
        args = TrainingArguments(
            output_dir=scratch, per_device_eval_batch_size=batch_size, report_to="none", remove_unused_columns=False
        )
        trainer = Trainer(model=model, args=args, data_collator=collator)
        logits, labels = predict(trainer, dataset[split])
    left_out = list(dict.fromkeys(getattr(collator, "faceless", [])))
    if predictions is not None:
        write_file(predictions, predictions_csv(kept_ids(dataset[split], left_out), logits, model.config))
    results = split_metrics(model, logits, labels, data_args.metrics)
    return {**results, "left_out": {"no face found": left_out}} if left_out else results


def kept_ids(split: Dataset, left_out: list[str]) -> list[str]:
    """The ids of the rows evaluated: every row's but those left out (named by id; positions where there is none)."""
    if "id" not in split.column_names:
        if left_out:
            raise ValueError("Rows without a face were left out; name them with an `id` column to write predictions.")
        return [str(i) for i in range(split.num_rows)]
    skipped = set(left_out)
    return [str(i) for i in split["id"] if str(i) not in skipped]


def predictions_header(config) -> list[str]:
    """The columns of a predictions file: `id`, the top `label` and each label's probability; or `id`, `prediction`."""
    if config.problem_type == "regression":
        return ["id", "prediction"]
    return ["id", "label", *(config.id2label[i] for i in range(config.num_labels))]


def predictions_csv(ids: list[str], logits: np.ndarray, config) -> str:
    """One row per item: its id, then the top label and every label's probability (softmax), or the predicted score."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(predictions_header(config))
    if config.problem_type == "regression":
        writer.writerows([i, f"{value:.6f}"] for i, value in zip(ids, logits.reshape(-1)))
        return buffer.getvalue()
    names = [config.id2label[i] for i in range(config.num_labels)]
    probabilities = softmax(logits)
    for item, row in zip(ids, probabilities):
        writer.writerow([item, names[int(row.argmax())], *(f"{p:.6f}" for p in row)])
    return buffer.getvalue()
