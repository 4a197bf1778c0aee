"""PyTorch mini-Xception (Arriaga et al., 2017): a 60k-parameter face-expression CNN, GIA-MIC's face tower."""

import torch
from torch import nn
from transformers import AutoModel, AutoModelForImageClassification, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)

from .configuration_mini_xception import MiniXceptionConfig


LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601, as OpenCV's BGR->GRAY used in training


class MaxPoolSame(nn.Module):
    """3x3 / stride-2 max pooling with TensorFlow's "same" padding (asymmetric: the extra pad goes after)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (hidden_states.shape[-1], hidden_states.shape[-2]):
            total = max((-(-size // self.stride) - 1) * self.stride + self.kernel_size - size, 0)
            pads += [total // 2, total - total // 2]
        padded = nn.functional.pad(hidden_states, pads, value=float("-inf"))
        return nn.functional.max_pool2d(padded, self.kernel_size, self.stride)


class SeparableConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(hidden_states))


class MiniXceptionBlock(nn.Module):
    """Two separable convolutions + max pooling, added to a strided 1x1 projection of the input."""

    def __init__(self, in_channels: int, out_channels: int, eps: float):
        super().__init__()
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_norm = nn.BatchNorm2d(out_channels, eps=eps)
        self.conv1 = SeparableConv2d(in_channels, out_channels)
        self.norm1 = nn.BatchNorm2d(out_channels, eps=eps)
        self.conv2 = SeparableConv2d(out_channels, out_channels)
        self.norm2 = nn.BatchNorm2d(out_channels, eps=eps)
        self.pool = MaxPoolSame()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_norm(self.shortcut(hidden_states))
        hidden_states = torch.relu(self.norm1(self.conv1(hidden_states)))
        hidden_states = self.pool(self.norm2(self.conv2(hidden_states)))
        return hidden_states + residual


class MiniXceptionPreTrainedModel(PreTrainedModel):
    config: MiniXceptionConfig
    config_class = MiniXceptionConfig
    base_model_prefix = "mini_xception"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
        elif isinstance(module, MiniXceptionModel):  # a non-persistent buffer: never in a checkpoint
            init.copy_(module.luminance, torch.tensor(LUMINANCE).view(1, 3, 1, 1))


class MiniXceptionModel(MiniXceptionPreTrainedModel):
    """The convolutional trunk: `last_hidden_state` (batch, 128, 4, 4) and its global average `pooler_output`."""

    def __init__(self, config: MiniXceptionConfig):
        super().__init__(config)
        eps, stem = config.batch_norm_eps, config.stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem, 3, bias=False),
            nn.BatchNorm2d(stem, eps=eps),
            nn.ReLU(),
            nn.Conv2d(stem, stem, 3, bias=False),
            nn.BatchNorm2d(stem, eps=eps),
            nn.ReLU(),
        )
        widths = [stem, *config.hidden_sizes]
        self.blocks = nn.ModuleList(MiniXceptionBlock(a, b, eps) for a, b in zip(widths[:-1], widths[1:]))
        self.register_buffer("luminance", torch.tensor(LUMINANCE).view(1, 3, 1, 1), persistent=False)
        self.post_init()

    def forward(
        self, pixel_values: torch.Tensor, return_dict: bool | None = None
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Faces scaled to [-1, 1] (`(x / 255 - 0.5) / 0.5`); RGB is converted to luminance.
        """
        if pixel_values.shape[1] == 3:
            pixel_values = (pixel_values * self.luminance.to(pixel_values.dtype)).sum(dim=1, keepdim=True)
        hidden_states = self.stem(pixel_values)
        for block in self.blocks:
            hidden_states = block(hidden_states)
        output = BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=hidden_states, pooler_output=hidden_states.mean(dim=(2, 3))
        )
        return output if return_dict is not False else output.to_tuple()


class MiniXceptionForImageClassification(MiniXceptionPreTrainedModel):
    """The trunk + the original classifier: a 3x3 convolution to `num_labels` maps, averaged over space."""

    def __init__(self, config: MiniXceptionConfig):
        super().__init__(config)
        self.mini_xception = MiniXceptionModel(config)
        self.classifier = nn.Conv2d(config.hidden_sizes[-1], config.num_labels, 3, padding=1)
        self.post_init()

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        hidden_states = self.mini_xception(pixel_values).last_hidden_state
        logits = self.classifier(hidden_states).mean(dim=(2, 3))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        output = ImageClassifierOutputWithNoAttention(loss=loss, logits=logits)
        return output if return_dict is not False else output.to_tuple()


AutoModel.register(MiniXceptionConfig, MiniXceptionModel, exist_ok=True)
AutoModelForImageClassification.register(MiniXceptionConfig, MiniXceptionForImageClassification, exist_ok=True)

__all__ = ["MiniXceptionForImageClassification", "MiniXceptionModel", "MiniXceptionPreTrainedModel"]
