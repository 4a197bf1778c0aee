"""GIA-MIC emotion-recognition metrics as a local `evaluate` module (no Hub access needed).

import evaluate, gia_mic
metric = evaluate.load(gia_mic.EVALUATE_MODULE, config_name="classification")   # or "regression" (MOSI), "sims"
metric.compute(predictions=[0, 2, 1], references=[0, 1, 1], num_labels=4)
"""

import datasets
import evaluate

from gia_mic.metrics import classification_metrics, regression_metrics, sims_metrics


_DESCRIPTION = """
classification: WA (accuracy), UA (mean recall over the classes present), macro-F1, weighted-F1, and the
`num_labels` x `num_labels` confusion matrix.
regression (CMU-MOSI, CMU-MOSEI): MAE, Pearson r, Acc-7, Acc-5, Acc-2 and weighted F1 (has0 and non0).
sims (CH-SIMS, MMSA's definitions): Acc-2, Acc-3, Acc-5 on SIMS's bins, weighted F1 of 2 classes, MAE, Pearson r.
"""
_KWARGS_DESCRIPTION = """
Args:
    predictions: class indices (classification) or sentiment scores (regression).
    references: true class indices or scores.
    num_labels: number of classes (classification only).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EmotionMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        value = datasets.Value("int64" if self.config_name == "classification" else "float32")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": value, "references": value}),
        )

    def _compute(self, predictions, references, num_labels: int | None = None):
        if self.config_name == "regression":
            return regression_metrics(predictions, references)
        if self.config_name == "sims":
            return sims_metrics(predictions, references)
        if self.config_name != "classification":
            raise ValueError(f"config_name must be 'classification', 'regression' or 'sims', got {self.config_name!r}")
        if num_labels is None:
            raise ValueError("Pass `num_labels`: the confusion matrix covers every class, present or not.")
        return classification_metrics(predictions, references, num_labels)
