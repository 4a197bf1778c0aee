"""
The building blocks the fusion networks are made of: modality projection, feed-forward, a transformer layer, an MLP,
and the masked pooling and per-modality bookkeeping they share.
"""

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_multimodal import MultimodalEmotionConfig
from .modeling_attention import MultimodalAttention, key_padding_to_additive_mask


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of `values` (batch, length, ...) counting only positions where `mask` (batch, length) is set."""
    mask = mask.to(values.dtype).view(*mask.shape, *([1] * (values.dim() - 2)))
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def downsample_sequence(
    hidden_states: torch.Tensor, mask: torch.Tensor, factor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Masked mean over non-overlapping windows of `factor` steps (the last one may be shorter); a window is valid if any
    of its steps is. The steps are padded with `factor - 1` zero-weight steps and averaged per window: the ratio of
    the two means is the mean over the real steps, and a traced graph needs no divisibility of the length.
    """
    if factor == 1:
        return hidden_states, mask
    weights = nn.functional.pad(mask.to(hidden_states.dtype)[:, None, :], (0, factor - 1))  # (batch, 1, length')
    values = nn.functional.pad(hidden_states.transpose(1, 2), (0, factor - 1)) * weights
    share = nn.functional.avg_pool1d(weights, factor, factor)  # real steps / factor, per window
    pooled = nn.functional.avg_pool1d(values, factor, factor) / share.clamp(min=torch.finfo(share.dtype).tiny)
    return pooled.transpose(1, 2), (share[:, 0] > 0).long()  # an empty window: 0 / tiny = 0


def pair_name(query: str, key: str) -> str:
    """Module and output key of the interaction in which `query` attends to `key`."""
    return f"{query}_from_{key}"


def per_pair(
    values: dict[tuple[str, str], torch.Tensor], pairs: tuple[tuple[str, str], ...], presence: dict[str, torch.Tensor]
) -> torch.Tensor:
    """(batch, num_pairs): each configured ordered pair's per-sample value, 0 for pairs not computed."""
    zeros = torch.zeros_like(next(iter(presence.values())))
    return torch.stack([values.get(pair, zeros) for pair in pairs], dim=1) if pairs else zeros[:, None][:, :0]


def presence_mask(presence: dict[str, torch.Tensor], modalities: tuple[str, ...]) -> torch.BoolTensor:
    """(batch, num_modalities): which configured modalities each sample has."""
    zeros = torch.zeros_like(next(iter(presence.values())))
    return torch.stack([presence.get(m, zeros) for m in modalities], dim=1).bool()


def slots(
    values: dict[str, torch.Tensor],
    presence: dict[str, torch.Tensor],
    missing: torch.Tensor,
    modalities: tuple[str, ...],
) -> torch.Tensor:
    """
    (batch, num_modalities, width): each configured modality's vector where the sample has it, and that modality's
    learned "missing" vector (`missing[index]`) where it does not.
    """
    batch_size = next(iter(presence.values())).shape[0]
    filled = []
    for index, modality in enumerate(modalities):
        default = missing[index].expand(batch_size, -1)
        present = presence.get(modality, default.new_zeros(batch_size))[:, None]
        filled.append(present * values.get(modality, default) + (1.0 - present) * default)
    return torch.stack(filled, dim=1)


class ModalityProjection(nn.Module):
    """Linear(D_m, d) -> LayerNorm -> Dropout, plus a learned modality embedding."""

    learned_embeddings = ("modality_embedding",)

    def __init__(self, config: MultimodalEmotionConfig, input_size: int):
        super().__init__()
        self.dense = nn.Linear(input_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.modality_embedding = nn.Parameter(torch.zeros(config.hidden_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.layer_norm(self.dense(features))) + self.modality_embedding


class MultimodalFeedForward(nn.Module):
    def __init__(self, config: MultimodalEmotionConfig, width: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(width or config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, width or config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation(self.fc1(hidden_states))))


class MultimodalTransformerLayer(GradientCheckpointingLayer):
    """Post-norm transformer layer: x <- LN(x + SelfAttn(x; mask)); x <- LN(x + FFN(x))."""

    def __init__(self, config: MultimodalEmotionConfig, width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        self.self_attention = MultimodalAttention(config, width)
        self.attention_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.feed_forward = MultimodalFeedForward(config, width)
        self.output_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`mask` (batch, length) of 1/0; returns the new states and, with `output_attentions`, the attention weights
        (computed eagerly for that call, whatever the implementation)."""
        additive = key_padding_to_additive_mask(mask, hidden_states.dtype)
        attended, weights = self.self_attention(hidden_states, hidden_states, additive, need_weights=output_attentions)
        return self.update(hidden_states, attended), weights

    def update(self, hidden_states: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """The rest of the layer, given its self-attention's output (for callers that run the attention themselves)."""
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))
        return self.output_norm(hidden_states + self.feed_forward(hidden_states))


def mlp(input_size: int, config: MultimodalEmotionConfig, output_size: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear -> activation -> Dropout -> Linear, the 2-layer MLP of heads and small networks."""
    return nn.Sequential(
        nn.Linear(input_size, config.hidden_size),
        ACT2FN[config.hidden_act],
        nn.Dropout(dropout),
        nn.Linear(config.hidden_size, output_size),
    )
