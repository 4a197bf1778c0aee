"""
Fine-tuning and evaluating the three architectures (GIA-MIC, MCIHN, MIAR) with `transformers.Trainer` on datasets
built by `dataset_scripts`.

Two kinds of dataset are understood:
- *raw*: `text` / `audio` (`Audio(decode=False)`) / `frames` columns, turned into model inputs batch by batch by the
  model's own [`GiaMicProcessor`], the one it is saved and served with (`preparation.RawBatchCollator`);
- *features*: `text_features` / `audio_features` / `vision_features` columns (from `gia-mic extract-features`, or
  MOSI's processed features), padded by [`MultimodalCollator`]; the model is built in feature mode.
"""

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import yaml
from datasets import Array2D, ClassLabel, Dataset, DatasetDict
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging as transformers_logging

from modeling_gia_mic import (
    ARCHITECTURES,
    GiaMicProcessor,
    MultimodalEmotionConfig,
    MultimodalForEmotionRecognition,
)

from .calibration import fit_temperatures, predict, softmax, uncertainty_threshold
from .collator import MultimodalCollator
from .folders import check_model_source, claim_training_output, mark_training_output, path_inside, record_outputs
from .folds import leave_one_group_out
from .metrics import REGRESSION_METRICS, build_compute_metrics, classification_metrics
from .overrides import parse_overrides
from .preparation import DEFAULT_MAX_TEXT_LENGTH, RawBatchCollator, processor_for_encoders, saved_processor
from .priors import class_priors, label_counts
from .reporting import plot_confusion_matrix, plot_training_curves, write_model_card


MODALITIES = ("text", "audio", "vision")
# Raw columns per modality; a single `image` (FER-2013) is a one-frame clip.
RAW_COLUMNS = {"text": ("text",), "audio": ("audio",), "vision": ("frames", "image")}
FEATURE_COLUMNS = {m: f"{m}_features" for m in MODALITIES}


@dataclass
class ModelArguments:
    """What to train: a saved model, or an architecture around pretrained encoders (or none, for feature datasets)."""

    model: str | None = field(default=None, metadata={"help": "a saved model (Hub id or folder) to fine-tune"})
    architecture: str | None = field(
        default=None,
        metadata={"help": "a new model's (default gia_mic); a --model keeps its own", "choices": list(ARCHITECTURES)},
    )
    text_encoder: str | None = field(default=None, metadata={"help": "Hub id or folder of a text encoder"})
    audio_encoder: str | None = field(default=None, metadata={"help": "Hub id or folder of an audio encoder"})
    vision_encoder: str | None = field(default=None, metadata={"help": "Hub id or folder of an image encoder"})
    freeze_encoders: bool = field(default=True, metadata={"help": "train the fusion head only"})
    modalities: list[str] | None = field(default=None, metadata={"help": "subset of text audio vision to use"})
    config_overrides: str | None = field(
        default=None, metadata={"help": "the architecture's config fields, e.g. 'hidden_size=128,num_gia_layers=1'"}
    )


@dataclass
class DataArguments:
    """Which dataset (a `save_to_disk` folder from `dataset_scripts`) and which of its splits and columns."""

    dataset: str = field(metadata={"help": "folder written by a dataset_scripts conversion"})
    train_split: str = field(default="train")
    eval_split: str | None = field(default=None, metadata={"help": "default: validation if present, else none"})
    test_split: str | None = field(default=None, metadata={"help": "evaluated after training; default: test"})
    label_column: str = field(default="label")
    problem_type: str | None = field(
        default=None,
        metadata={
            "help": "for a label column of plain integers: single_label_classification or regression",
            "choices": ["single_label_classification", "regression"],
        },
    )
    max_text_length: int | None = field(
        default=None,
        metadata={"help": f"truncate text to N tokens (a new model: {DEFAULT_MAX_TEXT_LENGTH}; a --model: its own)"},
    )
    detect_faces: bool | None = field(
        default=None, metadata={"help": "cut pictures to their largest face (a new model: no; a --model: its own)"}
    )
    num_frames: int | None = field(default=None, metadata={"help": "frames per video (a new model: 8)"})
    balanced_class_weights: bool = field(default=False, metadata={"help": "weight CE by inverse class frequency"})
    target_prior: str | None = field(
        default=None,
        metadata={
            "help": "the class frequencies the model is meant for, its outputs corrected to them: 'uniform' or "
            "'label=frequency,...' (default: the training split's own)"
        },
    )
    early_stopping_patience: int | None = field(default=None)

    @property
    def metrics(self) -> str:
        """The regression metric family the dataset card names (`gia_mic.metrics`: CH-SIMS's), else CMU-MOSI's."""
        card = Path(self.dataset) / "README.md"
        text = card.read_text(encoding="utf-8") if card.is_file() else ""
        metadata = yaml.safe_load(text.split("---")[1]) if text.startswith("---") and text.count("---") >= 2 else {}
        family = ((metadata or {}).get("gia_mic") or {}).get("metrics", "mosi")
        if family not in REGRESSION_METRICS:
            raise ValueError(f"{card}: gia_mic.metrics is {family!r}; expected one of {list(REGRESSION_METRICS)}.")
        return family


# ---------------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------------


def dataset_modalities(split: Dataset, requested: Sequence[str] | None) -> tuple[str, list[str]]:
    """('features' | 'raw', modalities present in the split and requested)."""
    columns = set(split.column_names)
    kind = "features" if any(c in columns for c in FEATURE_COLUMNS.values()) else "raw"
    if kind == "features":
        available = [m for m in MODALITIES if FEATURE_COLUMNS[m] in columns]
    else:
        available = [m for m in MODALITIES if columns & set(RAW_COLUMNS[m])]
    chosen = [m for m in available if requested is None or m in requested]
    missing = sorted(set(requested or ()) - set(available))
    if missing or not chosen:
        raise ValueError(
            f"The dataset has {kind} columns for {available or 'no modality'}; cannot use {missing or requested}."
        )
    return kind, chosen


def feature_array(width: int) -> Array2D:
    """
    How `gia-mic extract-features` stores a feature column: one (steps, width) float32 array per row. Read back as
    numpy from the flat Arrow buffer, about 5x faster than `List(List(float32))`, rebuilt vector by vector (data.py).
    """
    return Array2D(shape=(None, width), dtype="float32")


def feature_sizes(split: Dataset, modalities: Sequence[str]) -> dict[str, int]:
    """`<modality>_feature_size` config fields of a feature dataset: its `Array2D` width, or its first row's."""
    sizes = {}
    for modality in modalities:
        column = FEATURE_COLUMNS[modality]
        feature = split.features[column]
        sizes[f"{modality}_feature_size"] = (
            feature.shape[1] if isinstance(feature, Array2D) else len(split[0][column][0])
        )
    return sizes


def with_numpy_features(dataset: DatasetDict | Dataset) -> DatasetDict | Dataset:
    """
    Feature columns read as numpy arrays straight from Arrow. As Python lists, a 4 s clip of 384-wide speech features
    is 77k floats converted one by one on every read: the data loader, not the model, then bounds training speed.
    """
    first = next(iter(dataset.values())) if isinstance(dataset, DatasetDict) else dataset
    columns = [c for c in FEATURE_COLUMNS.values() if c in first.column_names]
    return dataset.with_format("numpy", columns=columns, output_all_columns=True) if columns else dataset


def with_length_column(dataset: DatasetDict, column: str) -> DatasetDict:
    """
    Adds `column`: each row's number of feature steps, summed over its feature columns, for
    `train_sampling_strategy="group_by_length"` (batches of similar length waste less compute on padding). Read from
    the Arrow list offsets, so no feature value is touched. Raw datasets have no cheap length: they must bring one.
    """
    out = {}
    for name, split in dataset.items():
        if column in split.column_names:
            out[name] = split
            continue
        columns = [c for c in FEATURE_COLUMNS.values() if c in split.column_names]
        if not columns:
            raise ValueError(
                f"`group_by_length` needs a {column!r} column (a length per row); split {name!r} is a raw dataset "
                f"without one (columns: {split.column_names}). Add it, e.g. the audio duration, or train on features."
            )
        table = split.with_format("arrow", columns=columns)[:]
        lengths = sum(sequence_lengths(table.column(c)) for c in columns)
        out[name] = split.add_column(column, lengths.astype(np.int64).tolist())
    return DatasetDict(out)


def sequence_lengths(column: pa.ChunkedArray) -> np.ndarray:
    """Rows' list lengths, from the offsets (`Array2D` columns are lists inside an extension type)."""
    chunks = [c.storage if isinstance(c, pa.ExtensionArray) else c for c in column.chunks]
    lengths = [pc.list_value_length(c).to_numpy(zero_copy_only=False) for c in chunks]
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)


def load_dataset_folder(path: str) -> DatasetDict:
    """A `save_to_disk` folder holding splits (a `DatasetDict`); anything else is a clear error."""
    if not Path(path).is_dir():
        raise ValueError(f"Dataset folder {path} not found: give a folder written by a dataset_scripts conversion.")
    try:
        dataset = datasets.load_from_disk(path)
    except FileNotFoundError:
        raise ValueError(f"{path} is not a dataset saved with `save_to_disk` (no dataset_dict.json).") from None
    if not isinstance(dataset, DatasetDict):
        raise ValueError(
            f"{path} holds a single Dataset ({dataset.num_rows} rows), not splits: save it as "
            "`DatasetDict({'train': dataset, ...})` so training knows which rows to train and evaluate on."
        )
    return dataset


def load_training_dataset(data_args: DataArguments, training_args: TrainingArguments) -> DatasetDict:
    """The dataset folder, with numpy feature reads and, for `group_by_length`, a length column."""
    dataset = load_dataset_folder(data_args.dataset)
    if training_args.train_sampling_strategy == "group_by_length":
        dataset = with_length_column(dataset, training_args.length_column_name)
    return with_numpy_features(dataset)


def label_info(split: Dataset, label_column: str, problem_type: str | None = None) -> dict[str, Any]:
    """
    num_labels / id2label / problem_type from the label column's feature type: `ClassLabel` -> classes, floats ->
    regression. Plain integers are ambiguous (classes or scores?) and need `problem_type`.
    """
    if label_column not in split.features:
        raise ValueError(f"The dataset has no label column {label_column!r}; it has {split.column_names}.")
    feature = split.features[label_column]
    if isinstance(feature, ClassLabel):
        if problem_type == "regression":
            raise ValueError(f"--problem_type regression: the label column {label_column!r} holds class names.")
        return {"num_labels": feature.num_classes, "id2label": dict(enumerate(feature.names))}
    dtype = getattr(feature, "dtype", None)
    if dtype is None or not (dtype.startswith(("int", "uint", "float")) or dtype == "double"):
        raise ValueError(f"Label column {label_column!r} must hold class indices or numbers; it holds {feature}.")
    if problem_type == "regression" or (problem_type is None and not dtype.startswith(("int", "uint"))):
        return {"num_labels": 1, "problem_type": "regression"}
    if problem_type is None:
        raise ValueError(
            f"Label column {label_column!r} holds plain integers ({dtype}) without class names: pass --problem_type "
            "single_label_classification (classes 0..N-1) or --problem_type regression (scores)."
        )
    if dtype.startswith("float") or dtype == "double":
        raise ValueError(f"--problem_type {problem_type}: the label column {label_column!r} holds {dtype} scores.")
    num_labels = int(max(split[label_column], default=-1)) + 1
    return {"num_labels": num_labels, "id2label": {i: str(i) for i in range(num_labels)}, "problem_type": problem_type}


def check_label_values(split: Dataset, label_column: str, config: MultimodalEmotionConfig, split_name: str) -> None:
    """Before training: every label is one the model takes (a finite score, a class index in range); bad rows by id."""
    values = np.asarray(split[label_column], dtype=np.float64)
    if config.problem_type == "regression":
        bad = ~np.isfinite(values)
        expected = "a finite number"
    else:
        bad = (values < 0) | (values >= config.num_labels) | (values != np.round(values))
        expected = f"a class index in [0, {config.num_labels})"
    if bad.any():
        rows = np.flatnonzero(bad)
        ids = split.select(rows[:5].tolist())["id"] if "id" in split.column_names else rows[:5].tolist()
        raise ValueError(
            f"Split {split_name!r}: {int(bad.sum())} row(s) have a {label_column!r} that is not {expected}, "
            f"e.g. row {ids[0]!r} with {values[rows[0]]} (rows {ids})."
        )


def apply_processor_settings(processor: GiaMicProcessor, data_args: DataArguments) -> None:
    """The processor settings given on the command line replace the saved ones (and are saved with the model)."""
    settings = {
        "max_length": data_args.max_text_length,
        "detect_faces": data_args.detect_faces,
        "num_frames": data_args.num_frames,
    }
    for name, value in settings.items():
        if value is not None:
            setattr(processor, name, value)


def feature_collator(
    split: Dataset, modalities: Sequence[str], label_column: str, regression: bool
) -> MultimodalCollator:
    """Pads the chosen feature columns; every other column (ids, transcripts, unused features) is left out."""
    used = {FEATURE_COLUMNS[m] for m in modalities} | {label_column}
    ignored = tuple(c for c in split.column_names if c not in used)
    return MultimodalCollator(regression=regression, label_column=label_column, ignore_keys=ignored)


# ---------------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------------


def saved_config(path: str) -> MultimodalEmotionConfig:
    """The config of a saved model of any of the three architectures."""
    check_model_source(path, "--model")
    config = AutoConfig.from_pretrained(path)
    if config.model_type not in ARCHITECTURES:
        raise ValueError(
            f"{path} holds a {config.model_type!r} model; this package trains {', '.join(ARCHITECTURES)} models."
        )
    return config


def load_saved_model(
    model_class: type[MultimodalForEmotionRecognition], path: str, **settings
) -> MultimodalForEmotionRecognition:
    """
    A saved model whose weights fit its architecture. Weights that cannot be read (a truncated file) or that leave
    any of the model's weights out (another model's checkpoint) are an error, never a randomly initialised model.
    """
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()  # the loading report: a missing weight is this function's error
    transformers_logging.disable_progress_bar()
    try:
        model, info = model_class.from_pretrained(path, output_loading_info=True, **settings)
    except SafetensorError as error:
        raise ValueError(f"The weights in {path} cannot be read ({str(error).splitlines()[0]}).") from None
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
    missing = sorted(info["missing_keys"])
    if missing:
        raise ValueError(
            f"The weights in {path} do not fit its {model.config.model_type} model: {len(missing)} of its weights "
            f"are not in the file (e.g. {missing[0]}); they are another model's weights, or not all of them."
        )
    return model


def architecture_class(model_args: ModelArguments) -> type[MultimodalForEmotionRecognition]:
    """The head class to build: the saved model's own, else `--architecture` (GIA-MIC by default)."""
    if model_args.model:
        saved = saved_config(model_args.model).model_type
        if model_args.architecture not in (None, saved):
            raise ValueError(
                f"--architecture {model_args.architecture} but --model {model_args.model} is a {saved} model: leave "
                "--architecture out to fine-tune it, or train a new model without --model."
            )
        return ARCHITECTURES[saved]
    return ARCHITECTURES[model_args.architecture or "gia_mic"]


def build_model_and_collator(
    model_args: ModelArguments, data_args: DataArguments, split: Dataset, training: bool = True
) -> tuple[MultimodalForEmotionRecognition, Any, GiaMicProcessor | None]:
    """
    The model to train (or, with `training=False`, the saved model to evaluate, as it is: no class weights or priors
    taken from the split) and the collator that prepares the split's rows for it.
    """
    model_class = architecture_class(model_args)
    kind, modalities = dataset_modalities(split, model_args.modalities)
    if model_args.modalities is None and model_args.model:  # a trained model reads those of its inputs given
        reads = list(saved_config(model_args.model).modalities)
        modalities = [m for m in modalities if m in reads]
        if not modalities:
            raise ValueError(f"{model_args.model} reads {reads}; the dataset has none of them.")
    labels = label_info(split, data_args.label_column, data_args.problem_type)
    overrides = parse_overrides(model_args.config_overrides, model_class.config_class)
    regression = labels.get("problem_type") == "regression"
    if training and not regression:
        counts = label_counts(split[data_args.label_column], labels["num_labels"])
        if data_args.balanced_class_weights:
            overrides["class_weights"] = (counts.sum() / (len(counts) * np.maximum(counts, 1))).tolist()
        weights = overrides.get(
            "class_weights", saved_config(model_args.model).class_weights if model_args.model else None
        )
        names = [labels["id2label"][i] for i in range(labels["num_labels"])]
        priors = {"target_prior": None, "training_prior": None}  # a fine-tuned model's earlier ones do not carry over
        overrides = {**priors, **class_priors(counts, names, weights, data_args.target_prior), **overrides}
    elif training and data_args.target_prior is not None:
        raise ValueError("--target_prior: a regression model has no classes to correct.")

    if model_args.model:
        model = load_saved_model(model_class, model_args.model, **labels, **overrides)
        processor = saved_processor(model_args.model, modalities) if kind == "raw" else None
    elif kind == "features":
        model = model_class(model_class.config_class(**feature_sizes(split, modalities), **labels, **overrides))
        processor = None
    else:
        encoders = {m: getattr(model_args, f"{m}_encoder") for m in modalities}
        absent = [m for m, path in encoders.items() if path is None]
        if absent:
            raise ValueError(f"Raw {absent} columns need --{absent[0]}_encoder (or a trained --model).")
        freeze = {f"freeze_{m}_encoder": model_args.freeze_encoders for m in modalities}
        model = model_class.from_encoders_pretrained(**encoders, **labels, **freeze, **overrides)
        processor = processor_for_encoders(encoders, max_length=DEFAULT_MAX_TEXT_LENGTH)

    if kind == "raw":
        apply_processor_settings(processor, data_args)
        collator = RawBatchCollator(processor, modalities, data_args.label_column, regression)
    else:
        collator = feature_collator(split, modalities, data_args.label_column, regression)
    return model, collator, processor


# ---------------------------------------------------------------------------------------------------------------------
# Train / evaluate
# ---------------------------------------------------------------------------------------------------------------------


def resolve_splits(dataset: DatasetDict, data_args: DataArguments) -> tuple[str | None, str | None]:
    if data_args.train_split not in dataset:
        raise ValueError(f"No split {data_args.train_split!r} in {data_args.dataset}; it has {list(dataset)}.")
    eval_split = data_args.eval_split or ("validation" if "validation" in dataset else None)
    test_split = data_args.test_split or ("test" if "test" in dataset else None)
    for name in (eval_split, test_split):
        if name is not None and name not in dataset:
            raise ValueError(f"No split {name!r} in {data_args.dataset}; it has {list(dataset)}.")
    return eval_split, test_split


def selection_metric(regression: bool) -> tuple[str, bool]:
    """The checkpoint-selection metric: UA for classification, MAE for regression."""
    return ("mae", False) if regression else ("ua", True)


class EmotionTrainer(Trainer):
    """
    `Trainer` that also logs each term of the model's loss (`classification_loss`, and `invariance_loss`,
    `reconstruction_loss`, `contrastive_loss`, ... by architecture): the mean over the steps since the last log, over
    every process, beside `loss` in `trainer_state.json` and in the training-curve plot.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss_terms: dict[str, list[torch.Tensor]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            for name in self.accelerator.unwrap_model(model).loss_names:
                if outputs.get(name) is not None:
                    self._loss_terms.setdefault(name, []).append(outputs[name].detach().float())
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._loss_terms:
            for name, values in self._loss_terms.items():
                logs[name] = round(self.accelerator.gather(torch.stack(values)).mean().item(), 4)
            self._loss_terms = {}
        super().log(logs, start_time)


def make_trainer(
    model: MultimodalForEmotionRecognition,
    collator,
    training_args: TrainingArguments,
    train: Dataset,
    evaluation: Dataset | None,
    early_stopping_patience: int | None = None,
    processor: GiaMicProcessor | None = None,
    metrics: str = "mosi",
) -> Trainer:
    """The trainer for `model`, on a copy of `training_args` with what this package's data needs (theirs unchanged)."""
    regression = model.config.problem_type == "regression"
    needed = {"remove_unused_columns": False}  # the collators read the raw / feature columns themselves
    if evaluation is not None and training_args.load_best_model_at_end:
        needed["metric_for_best_model"], needed["greater_is_better"] = selection_metric(regression)
    training_args = dataclasses.replace(training_args, **needed)
    callbacks = [EarlyStoppingCallback(early_stopping_patience)] if early_stopping_patience else []
    if processor is not None:
        callbacks.append(SaveProcessorCallback(processor))
    return EmotionTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collator,
        compute_metrics=build_compute_metrics(model.config.num_labels, regression, metrics),
        callbacks=callbacks,
    )


class SaveProcessorCallback(TrainerCallback):
    """Every `checkpoint-N` gets the model's processor, so it evaluates (and serves) on its own."""

    def __init__(self, processor: GiaMicProcessor):
        self.processor = processor

    def on_save(self, args: TrainingArguments, state, control, **kwargs):
        if state.is_world_process_zero:
            self.processor.save_pretrained(Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")


def resume_checkpoint(value: str | bool | None, output_dir: str) -> str | None:
    """
    `--resume_from_checkpoint`: a checkpoint folder, or `true`/`latest` for the newest `checkpoint-N` in the output
    folder; `false` (or nothing) starts afresh. Anything else is a clear error, never a path taken on trust.
    """
    if value is None or value is False or str(value).lower() in ("", "false", "no", "none"):
        return None
    if value is True or str(value).lower() in ("true", "yes", "latest"):
        last = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if last is None:
            raise ValueError(f"--resume_from_checkpoint {value}: there is no checkpoint-N folder in {output_dir}.")
        return last
    if not (Path(value) / "trainer_state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint: {value} is not a checkpoint folder (no trainer_state.json).")
    return str(value)


def split_metrics(
    model: MultimodalForEmotionRecognition, logits: np.ndarray, labels: np.ndarray, metrics: str = "mosi"
) -> dict[str, Any]:
    if model.config.problem_type == "regression":
        return REGRESSION_METRICS[metrics](logits.reshape(-1), labels)
    return classification_metrics(logits, labels, model.config.num_labels)


def train(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict[str, Any]:
    """Train on the train split (selecting on the eval split if any), then report on eval and test splits."""
    claim_outputs_folder("gia-mic train", model_args, data_args, training_args)
    dataset = load_training_dataset(data_args, training_args)
    eval_split, test_split = resolve_splits(dataset, data_args)
    mark = functools.partial(mark_training_output, training_args.output_dir, "gia-mic train")
    splits = (data_args.train_split, eval_split, test_split)
    results = fit_and_report(model_args, data_args, training_args, dataset, *splits, mark)
    if training_args.process_index == 0:
        record_outputs(training_args.output_dir, "gia-mic train")
    return results


def claim_outputs_folder(
    command: str, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> None:
    """`--output_dir` lies apart from every input and holds nothing `command` did not write (before any work)."""
    inputs = {"--dataset": data_args.dataset, "--model": model_args.model}
    inputs.update({f"--{m}_encoder": getattr(model_args, f"{m}_encoder") for m in ("text", "audio", "vision")})
    claim_training_output(training_args.output_dir, command, inputs)


def fit_and_report(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    splits: DatasetDict | dict[str, Dataset],
    train_split: str,
    eval_split: str | None,
    test_split: str | None,
    mark_output: Callable[[], None],
) -> dict[str, Any]:
    """
    Train, measure every reported split, and write metrics.json, plots and a model card into `output_dir`
    (`mark_output` marks the claimed folder when training starts, on the main process).
    """
    resume = resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    metrics = data_args.metrics  # the dataset card read once, before training
    set_seed(training_args.seed)  # before the model exists: its initial weights are part of the run
    model, collator, processor = build_model_and_collator(model_args, data_args, splits[train_split])
    for name in dict.fromkeys(filter(None, (train_split, eval_split, test_split))):
        check_label_values(splits[name], data_args.label_column, model.config, name)
    trainer = make_trainer(
        model,
        collator,
        training_args,
        splits[train_split],
        splits[eval_split] if eval_split else None,
        data_args.early_stopping_patience,
        processor,
        metrics,
    )
    if training_args.process_index == 0:
        mark_output()
    model.config.temperatures = model.config.uncertain_below = None  # a fine-tuned model is calibrated afresh
    trainer.train(resume_from_checkpoint=resume)
    results: dict[str, Any] = {"train_split": train_split, "train_rows": splits[train_split].num_rows}
    if eval_split and not trainer.model.regression:  # calibrated on the validation split, then measured
        given = dataset_modalities(splits[eval_split], model_args.modalities)[1]
        modalities = [m for m in trainer.model.config.modalities if m in given]
        fitted = fit_temperatures(trainer, splits[eval_split], modalities)
        results["calibration"] = {
            key: {"temperature": t, "ece_before": before, "ece_after": after}
            for key, (t, before, after) in fitted.items()
        }
        logits, labels = predict(trainer, splits[eval_split])
        trainer.model.config.uncertain_below = uncertainty_threshold(softmax(logits), labels)
        results["uncertain_below"] = trainer.model.config.uncertain_below
    for name in filter(None, (eval_split, test_split)):
        logits, labels = predict(trainer, splits[name])
        results[name] = split_metrics(trainer.model, logits, labels, metrics)
    left_out = list(dict.fromkeys(getattr(collator, "faceless", [])))
    if left_out:  # rows whose pictures hold no face the processor finds: named, never silently dropped
        results["left_out"] = {"no face found": left_out}
        print(f"{len(left_out)} rows without a face the processor finds were left out (listed in metrics.json)")
    if trainer.is_world_process_zero():
        save_outputs(trainer, processor, data_args, results, test_split or eval_split)
    return results


def cross_validate(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments, fold_column: str
) -> dict[str, Any]:
    """Leave-one-group-out CV: train a fresh model per fold, report mean ± std over folds (cv_results.json/.md)."""
    dataset = load_training_dataset(data_args, training_args)
    root = Path(training_args.output_dir)
    folds = leave_one_group_out(dataset[data_args.train_split], fold_column)
    fold_dirs = [  # checked before any training: a value from the data never leads outside --output_dir
        path_inside(root, f"fold_{fold_column}_{value}", f"fold value {value!r} of --fold_column")
        for value, _, _ in folds
    ]
    claim_outputs_folder("gia-mic cv", model_args, data_args, training_args)
    mark = functools.partial(mark_training_output, root, "gia-mic cv")
    names, fold_results, rows = [], [], {}
    for (value, train_part, test_part), fold_dir in zip(folds, fold_dirs):
        fold_args = dataclasses.replace(training_args, output_dir=str(fold_dir))
        results = fit_and_report(
            model_args, data_args, fold_args, {"train": train_part, "test": test_part}, "train", None, "test", mark
        )
        names.append(f"{fold_column}={value}")
        fold_results.append(results["test"])
        rows[names[-1]] = {"train": results["train_rows"], "test": test_part.num_rows}
        if training_args.process_index == 0:
            record_outputs(root, "gia-mic cv")
    summary = aggregate_folds(fold_results)
    table = format_cv_table(names, fold_results, summary)
    if training_args.process_index == 0:
        root.mkdir(parents=True, exist_ok=True)
        payload = {
            "fold_column": fold_column,
            "folds": dict(zip(names, fold_results)),
            "rows": rows,
            "summary": summary,
        }
        (root / "cv_results.json").write_text(json.dumps(payload, indent=2))
        (root / "cv_results.md").write_text(table + "\n")
        record_outputs(root, "gia-mic cv")
    return {"folds": dict(zip(names, fold_results)), "summary": summary, "table": table}


def save_outputs(
    trainer: Trainer, processor: GiaMicProcessor | None, data_args: DataArguments, results: dict, report_split: str
) -> None:
    output_dir = Path(trainer.args.output_dir)
    trainer.save_model(str(output_dir))
    if processor is not None:
        processor.save_pretrained(output_dir)
    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    model = trainer.model
    curves = output_dir / "training_curves.png"
    plot_training_curves(trainer.state.log_history, curves, f"{model.config.model_type} training")
    if report_split and "confusion_matrix" in results.get(report_split, {}):
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        plot_confusion_matrix(
            np.array(results[report_split]["confusion_matrix"]),
            names,
            output_dir / "confusion_matrix.png",
            title=f"{Path(data_args.dataset).name} / {report_split}",
        )
    write_model_card(output_dir, model.config, data_args.dataset, results, report_split, trainer.args)


def aggregate_folds(fold_results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """mean and std over folds of every scalar metric."""
    keys = [k for k, v in fold_results[0].items() if isinstance(v, int | float)]
    return {
        key: {
            "mean": float(np.mean([r[key] for r in fold_results])),
            "std": float(np.std([r[key] for r in fold_results])),
        }
        for key in keys
    }


def format_cv_table(fold_names: list[str], fold_results: list[dict[str, Any]], summary: dict) -> str:
    keys = list(summary)
    header = "| fold | " + " | ".join(keys) + " |\n|---|" + "---:|" * len(keys)
    rows = [
        f"| {name} | " + " | ".join(f"{result[k]:.4f}" for k in keys) + " |"
        for name, result in zip(fold_names, fold_results)
    ]
    total = "| mean ± std | " + " | ".join(f"{summary[k]['mean']:.4f} ± {summary[k]['std']:.4f}" for k in keys) + " |"
    return "\n".join([header, *rows, total])
