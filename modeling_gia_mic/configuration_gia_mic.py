"""GIA-MIC model configuration."""

from typing import Literal

from .configuration_multimodal import MultimodalEmotionConfig


GATE_TYPES = ("elementwise", "scalar", "none")
POOLING_TYPES = ("mean", "attention")
INVARIANCE_LOSSES = ("similarity", "cmd", "none")


class GiaMicConfig(MultimodalEmotionConfig):
    r"""
    Configuration of a GIA-MIC model (gated interactive attention + modality-invariant generator, He, Mi & Toda,
    INTERSPEECH 2025). The paper's equations are not public: every choice of the reconstruction documented in the
    model card is a field here, so it can be matched to the paper exactly. The modalities, encoders, widths and task
    loss are the fields of [`MultimodalEmotionConfig`], shared with MCIHN and MIAR.

    Args:
        num_gia_layers (`int`, defaults to 2): Number of gated interactive attention layers.
        gate_type (`str`, defaults to `"elementwise"`):
            `"elementwise"` (one gate per position and channel), `"scalar"` (one gate per position) or `"none"`
            (ablation: plain cross-attention, every gate open).
        pooling (`str`, defaults to `"mean"`): `"mean"` (masked mean) or `"attention"` (masked attention pooling).
        invariance_loss (`str`, defaults to `"similarity"`):
            `"similarity"` (cosine alignment + similarity-matrix alignment), `"cmd"` (central moment discrepancy)
            or `"none"` (ablation).
        invariance_weight (`float`, defaults to 0.1): Weight of the invariance loss in the total loss.
        similarity_weight (`float`, defaults to 1.0): Weight of the similarity-matrix term inside the invariance loss.
        cmd_moments (`int`, defaults to 5): Highest central moment of the `"cmd"` invariance loss.
        Other fields: see [`MultimodalEmotionConfig`].
    """

    model_type = "gia_mic"
    num_gia_layers: int = 2
    gate_type: Literal["elementwise", "scalar", "none"] = "elementwise"
    pooling: Literal["mean", "attention"] = "mean"
    invariance_loss: Literal["similarity", "cmd", "none"] = "similarity"
    invariance_weight: float = 0.1
    similarity_weight: float = 1.0
    cmd_moments: int = 5

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._check_choice("gate_type", GATE_TYPES)
        self._check_choice("pooling", POOLING_TYPES)
        self._check_choice("invariance_loss", INVARIANCE_LOSSES)


__all__ = ["GiaMicConfig"]
