"""MIAR model configuration."""

from .configuration_multimodal import MultimodalEmotionConfig


class MiarConfig(MultimodalEmotionConfig):
    r"""
    Configuration of a MIAR model ("Modality Interaction and Alignment Representation Fusion for Multimodal
    Emotion", Zhu & Yu, arXiv 2601.02414): one learned token per modality that gathers what the other modalities
    hold, a global token over all of them ("four tokens" for three modalities), and a contrastive alignment of the
    tokens. The paper's body is not public: this is the package's documented reconstruction, and every choice it
    makes is a field here. The modalities, encoders, widths and task loss are the fields of
    [`MultimodalEmotionConfig`], shared with GIA-MIC and MCIHN.

    Args:
        num_interaction_layers (`int`, defaults to 2): Modality interaction layers.
        contrastive_temperature (`float`, defaults to 0.07): Temperature of the InfoNCE alignment.
        learnable_temperature (`bool`, defaults to `False`): Learn the temperature (from the value above).
        contrastive_weight (`float`, defaults to 0.1): Weight of the contrastive alignment loss.
        Other fields: see [`MultimodalEmotionConfig`].
    """

    model_type = "miar"
    num_interaction_layers: int = 2
    contrastive_temperature: float = 0.07
    learnable_temperature: bool = False
    contrastive_weight: float = 0.1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.contrastive_temperature <= 0:
            raise ValueError(f"`contrastive_temperature` must be positive; got {self.contrastive_temperature}.")


__all__ = ["MiarConfig"]
