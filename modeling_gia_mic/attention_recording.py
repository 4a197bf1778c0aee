"""
How a layer that attends within and across the modalities records its weights: one (batch, heads, length, length)
matrix over the modalities' sequences joined along the length axis (the `hidden_states` / `attentions` layout).
"""

import itertools
from collections.abc import Hashable
from dataclasses import dataclass

import torch

from .modeling_attention import MultimodalAttention


def split_joined(joined: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The modalities' sequences of a joined (batch, total_length, width) tensor, in `masks`' order and lengths."""
    return dict(zip(masks, torch.split(joined, [mask.shape[1] for mask in masks.values()], dim=1)))


def join(states: dict[str, torch.Tensor]) -> torch.Tensor:
    """The modalities' sequences joined along the length axis (the `hidden_states` layout)."""
    return torch.cat(list(states.values()), dim=1)


def joined_positions(sequences: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each modality's positions along the joined length axis (the `hidden_states` / `attentions` layout)."""
    ends = itertools.accumulate(x.shape[1] for x in sequences.values())
    return {m: torch.arange(end - x.shape[1], end, device=x.device) for (m, x), end in zip(sequences.items(), ends)}


@dataclass
class AttentionBlock:
    """
    One attention call of a fusion layer (`attention(query, key_value, mask)`) and where its weights sit in the
    layer's joined attention matrix: the query rows at positions `rows`, the keys at positions `columns`.
    """

    attention: "MultimodalAttention"
    query: torch.Tensor
    key_value: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor
    columns: torch.Tensor


def attention_matrix(sequences: dict[str, torch.Tensor], num_heads: int) -> torch.Tensor:
    """A zero (batch, heads, length, length) matrix over the joined sequences, for `attend_jointly` to fill."""
    reference = next(iter(sequences.values()))
    length = sum(x.shape[1] for x in sequences.values())
    return reference.new_zeros(reference.shape[0], num_heads, length, length)


def attend_jointly(
    blocks: dict[Hashable, AttentionBlock], joined: torch.Tensor | None = None, need_weights: bool = False
) -> tuple[dict[Hashable, torch.Tensor], dict[Hashable, torch.Tensor | None]]:
    """
    Runs independent attention calls; returns their outputs and their weights (`need_weights`, or when recording).
    With `joined` (from `attention_matrix`) the weights are recorded in it, zero outside the blocks (an `attentions`
    entry), and each call goes on from its block read back from it: the matrix is then upstream of everything the
    weights feed, so `retain_grad()` on it sees their gradients.
    """
    if joined is None:
        results = {key: b.attention(b.query, b.key_value, b.mask, need_weights) for key, b in blocks.items()}
        return {key: r[0] for key, r in results.items()}, {key: r[1] for key, r in results.items()}
    prepared = {key: b.attention.weigh(b.query, b.key_value, b.mask) for key, b in blocks.items()}
    for key, b in blocks.items():
        joined[:, :, b.rows[:, None], b.columns] = prepared[key][0]
    weights = {key: joined[:, :, b.rows[:, None], b.columns] for key, b in blocks.items()}
    return {key: b.attention.attend(weights[key], prepared[key][1]) for key, b in blocks.items()}, weights


def split_modalities(
    joined: torch.Tensor, modality_lengths: torch.Tensor, modalities: tuple[str, ...], dim: int = 1
) -> dict[str, torch.Tensor]:
    """
    The per-modality view of a joined `hidden_states` entry (dim=1) or an `attentions` block matrix (dim=-2 for the
    query rows, -1 for the key columns): `{modality: slice}` for the modalities present (`modality_lengths` > 0).
    """
    lengths = {m: int(n) for m, n in zip(modalities, modality_lengths.tolist()) if n > 0}
    return dict(zip(lengths, torch.split(joined, list(lengths.values()), dim=dim)))
