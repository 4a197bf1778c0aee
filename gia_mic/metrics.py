"""
Emotion-recognition metrics with scikit-learn (`evaluate.load` of Hub metrics fails offline).

Classification: WA (accuracy), UA (mean per-class recall), macro-F1, weighted-F1 and the confusion matrix over all
`num_labels` classes. A class absent from the references has no recall: UA averages over the classes present (as
`balanced_accuracy_score` does), and macro-F1 over the classes present or predicted (a class predicted but never
true scores F1 = 0); from logits also the expected calibration error (ECE, 15 bins). Regression (CMU-MOSI
sentiment in [-3, 3]): MAE, Pearson r, Acc-7, Acc-5, and Acc-2 / weighted F1 in the two conventions of the
literature: "has0" (negative vs non-negative) and "non0" (negative vs positive, segments labelled exactly 0
dropped); CMU-MOSEI the same. CH-SIMS (labels in [-1, 1]) as MMSA's `metricsTop.py` defines them: predictions and
labels clipped to [-1, 1], Acc-2 / Acc-3 / Acc-5 on SIMS's bins, the weighted F1 of the two classes, MAE and
Pearson r.
"""

from collections.abc import Callable

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score
from transformers import EvalPrediction

from .calibration import expected_calibration_error, softmax


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict:
    """
    `predictions` are class indices, or logits of shape (N, num_labels): then also the expected calibration error of
    their probabilities (`ece`, 15 bins).
    """
    calibration = {}
    if np.ndim(predictions) == 2:
        probabilities = softmax(predictions)
        calibration["ece"] = expected_calibration_error(probabilities, np.asarray(labels).astype(int))
    predictions = _as_classes(predictions)
    labels = np.asarray(labels).astype(int)
    present = sorted(set(labels.tolist()))
    seen = sorted(set(labels.tolist()) | set(predictions.tolist()))
    return {
        "wa": float(accuracy_score(labels, predictions)),
        "ua": float(recall_score(labels, predictions, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(labels, predictions, labels=seen, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, predictions, labels=present, average="weighted", zero_division=0)),
        **calibration,
        "confusion_matrix": confusion_matrix(labels, predictions, labels=list(range(num_labels))).tolist(),
    }


def regression_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """CMU-MOSI metrics of sentiment predictions against labels in [-3, 3]."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    non_zero = labels != 0
    pearson = np.corrcoef(predictions, labels)[0, 1] if predictions.std() > 0 and labels.std() > 0 else 0.0
    return {
        "mae": float(np.abs(predictions - labels).mean()),
        "corr": float(pearson),
        "acc7": _rounded_accuracy(predictions, labels, 3.0),
        "acc5": _rounded_accuracy(predictions, labels, 2.0),
        "acc2_has0": float(accuracy_score(labels >= 0, predictions >= 0)),
        "f1_has0": float(f1_score(labels >= 0, predictions >= 0, average="weighted")),
        "acc2_non0": float(accuracy_score(labels[non_zero] > 0, predictions[non_zero] > 0)),
        "f1_non0": float(f1_score(labels[non_zero] > 0, predictions[non_zero] > 0, average="weighted")),
    }


# Inner edges of SIMS's bins; each bin is closed on the right: [-1, e1], (e1, e2], ..., (e_k, 1].
SIMS_BINS = {"acc2": (0.0,), "acc3": (-0.1, 0.1), "acc5": (-0.7, -0.1, 0.1, 0.7)}


def sims_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """CH-SIMS metrics (MMSA's definitions) of sentiment predictions against labels in [-1, 1]."""
    predictions = np.clip(np.asarray(predictions, dtype=np.float64).reshape(-1), -1.0, 1.0)
    labels = np.clip(np.asarray(labels, dtype=np.float64).reshape(-1), -1.0, 1.0)

    def bins(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
        # In float32, as the labels are stored (and as MMSA compares them): a label of 0.7 falls on the edge 0.7.
        return np.searchsorted(np.float32(edges), values.astype(np.float32), side="left")

    binned = {name: (bins(predictions, edges), bins(labels, edges)) for name, edges in SIMS_BINS.items()}
    pearson = np.corrcoef(predictions, labels)[0, 1] if predictions.std() > 0 and labels.std() > 0 else 0.0
    return {
        **{name: float((predicted == true).mean()) for name, (predicted, true) in binned.items()},
        "f1": float(f1_score(binned["acc2"][1], binned["acc2"][0], average="weighted")),
        "mae": float(np.abs(predictions - labels).mean()),
        "corr": float(pearson),
    }


# The regression metric family a dataset card names (`gia_mic.metrics`); CMU-MOSI's by default.
REGRESSION_METRICS = {"mosi": regression_metrics, "sims": sims_metrics}


def _rounded_accuracy(predictions: np.ndarray, labels: np.ndarray, bound: float) -> float:
    """Acc-7 (bound 3) / Acc-5 (bound 2): clip to [-bound, bound], round to integers, compare."""
    clip = lambda x: np.round(np.clip(x, -bound, bound))  # noqa: E731
    return float((clip(predictions) == clip(labels)).mean())


def _as_classes(predictions: np.ndarray) -> np.ndarray:
    predictions = np.asarray(predictions)
    return predictions.argmax(-1) if predictions.ndim == 2 else predictions.astype(int)


def build_compute_metrics(num_labels: int, regression: bool, family: str = "mosi") -> Callable[[EvalPrediction], dict]:
    """A `compute_metrics` for `Trainer`: scalar metrics only (the confusion matrix is saved separately)."""

    def compute_metrics(prediction: EvalPrediction) -> dict:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        if regression:
            return REGRESSION_METRICS[family](np.asarray(logits).reshape(-1), prediction.label_ids)
        metrics = classification_metrics(logits, prediction.label_ids, num_labels)
        metrics.pop("confusion_matrix")
        return metrics

    return compute_metrics
