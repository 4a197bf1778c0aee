"""GIA-MIC tooling around the model: data collation, metrics, training, evaluation and Hub publishing.

The model itself lives in `modeling_gia_mic` (the code that travels to the Hub); nothing here is needed to load it.
"""

from pathlib import Path

from .collator import MultimodalCollator
from .metrics import build_compute_metrics, classification_metrics, regression_metrics


EVALUATE_MODULE = str(Path(__file__).parent / "emotion_metrics")
"""Path for `evaluate.load(EVALUATE_MODULE, config_name="classification" | "regression")`."""

__all__ = [
    "EVALUATE_MODULE",
    "MultimodalCollator",
    "build_compute_metrics",
    "classification_metrics",
    "regression_metrics",
]
