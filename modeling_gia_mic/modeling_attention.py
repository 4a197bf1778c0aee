"""
Multi-head attention through the transformers attention interface (`config._attn_implementation`), with an eager path
that returns the weights whatever implementation is loaded.
"""

from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_multimodal import MultimodalEmotionConfig


def key_padding_to_additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, key_length) 1/0 padding mask -> (batch, 1, 1, key_length) additive mask for the attention interface."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def eager_attention_weights(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
) -> torch.Tensor:
    """softmax(q k^T * scaling + mask), with dropout in training: (batch, heads, query_length, key_length)."""
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    return nn.functional.dropout(attn_weights, p=dropout, training=module.training)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    attn_weights = eager_attention_weights(module, query, key, attention_mask, scaling, dropout)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class MultimodalAttention(nn.Module):
    """
    Multi-head attention of `hidden_states` (queries) over `key_value_states`, through the transformers attention
    interface (`config._attn_implementation`), over `width` channels (the config's `hidden_size` by default).
    `weigh` and `attend` are its two halves, for callers that record the weights before using them.
    """

    def __init__(self, config: MultimodalEmotionConfig, width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = width // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        self.is_causal = False
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def _heads(self, projection: nn.Linear, states: torch.Tensor) -> torch.Tensor:
        """(batch, length, width) -> (batch, heads, length, head_dim)."""
        return projection(states).view(states.shape[0], states.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor,
        attention_mask: torch.Tensor,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`need_weights` computes eagerly whatever the implementation, for callers that use the weights."""
        attention_interface: Callable = eager_attention_forward
        if not need_weights:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            self._heads(self.q_proj, hidden_states),
            self._heads(self.k_proj, key_value_states),
            self._heads(self.v_proj, key_value_states),
            attention_mask,
            scaling=self.scaling,
            dropout=self.dropout if self.training else 0.0,
        )
        return self._merge_heads(attn_output), attn_weights

    def weigh(
        self, hidden_states: torch.Tensor, key_value_states: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The eager attention weights (batch, heads, query_length, key_length) and the values they weigh."""
        queries, keys = self._heads(self.q_proj, hidden_states), self._heads(self.k_proj, key_value_states)
        dropout = self.dropout if self.training else 0.0
        weights = eager_attention_weights(self, queries, keys, attention_mask, self.scaling, dropout)
        return weights, self._heads(self.v_proj, key_value_states)

    def attend(self, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The attention output for `weigh`'s weights and values: (batch, query_length, width)."""
        return self._merge_heads(torch.matmul(weights, values).transpose(1, 2))

    def _merge_heads(self, attended: torch.Tensor) -> torch.Tensor:
        """(batch, length, heads, head_dim) -> the output projection of the heads side by side."""
        return self.out_proj(attended.reshape(*attended.shape[:2], -1))


__all__ = ["MultimodalAttention"]
