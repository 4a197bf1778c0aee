"""GIA-MIC tooling around the model: data collation, metrics, training, evaluation and Hub publishing.

The model itself lives in `modeling_gia_mic` (the code that travels to the Hub); nothing here is needed to load it.
"""

from .collator import MultimodalCollator


__all__ = ["MultimodalCollator"]
