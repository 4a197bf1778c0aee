"""
PyTorch MIAR (reconstruction): modality interaction tokens (one per modality plus a global one) and a contrastive
alignment of the tokens, on the front end shared with GIA-MIC and MCIHN.
"""

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention_recording import AttentionBlock, attend_jointly, attention_matrix, join, joined_positions, split_joined
from .configuration_miar import MiarConfig
from .modeling_attention import MultimodalAttention, key_padding_to_additive_mask
from .modeling_head import (
    MultimodalForEmotionRecognition,
    emotion_classifier,
    mean_over_given,
    register_architecture,
    weighted_mean,
)
from .modeling_layers import MultimodalFeedForward, MultimodalTransformerLayer, per_pair, presence_mask, slots
from .modeling_multimodal import MultimodalModel
from .modeling_outputs import MultimodalEmotionRecognitionOutput, MultimodalModelOutput


@dataclass
class MiarModelOutput(MultimodalModelOutput):
    r"""
    fused_embedding (`torch.FloatTensor` of shape `(batch_size, (num_modalities + 1) * hidden_size)`):
        The "four tokens" `[t_text ; t_audio ; t_vision ; t_global]`, a learned "missing" token in place of an absent
        modality's.
    modality_embeddings (`torch.FloatTensor` of shape `(batch_size, num_modalities, hidden_size)`):
        The modality tokens `t_m` after the last interaction layer.
    global_embedding (`torch.FloatTensor` of shape `(batch_size, hidden_size)`): The global token `t_g`.
    gate_values (`torch.FloatTensor` of shape `(batch_size, num_pairs)`):
        The attention mass token `t_a` puts on modality b's positions, per ordered pair `config.modality_pairs`,
        averaged over heads and layers (the masses of one query modality sum to 1). 0 where a pair is absent.
    hidden_states (`tuple[torch.FloatTensor]`, *optional*):
        `num_interaction_layers + 1` tensors `(batch_size, total_length, hidden_size)`: each present modality's
        sequence with its token in front (`[t_m ; X_m]`), joined in `config.modalities` order;
        `modality_lengths` counts the token.
    attentions (`tuple[torch.FloatTensor]`, *optional*, computed eagerly):
        Per layer `(batch_size, num_heads, total_length, total_length)` over the same joined sequence: the diagonal
        blocks hold each modality's self-attention over `[t_m ; X_m]`, zero elsewhere.
    cross_attentions (`tuple[torch.FloatTensor]`, *optional*, computed eagerly):
        Per layer, in the same layout, each token's attention over the other modalities: in the block (a, b) the row
        of `t_a` holds its weights on b's positions (the other rows, the column of `t_b` and the diagonal blocks are
        0). Both are upstream of the layer's outputs: `retain_grad()` on them sees the gradients.
    contrastive_loss (`torch.FloatTensor` of shape `()`):
        Symmetric InfoNCE between the tokens of every two present modalities and between each token and `t_g`.
    Other fields: see [`MultimodalModelOutput`].
    """

    global_embedding: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None


@dataclass
class MiarEmotionRecognitionOutput(MultimodalEmotionRecognitionOutput):
    r"""
    loss: `classification_loss + config.contrastive_weight * contrastive_loss`.
    global_embedding, contrastive_loss: See [`MiarModelOutput`]. Other fields: see
    [`MultimodalEmotionRecognitionOutput`].
    """

    global_embedding: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None


class ModalityInteraction(GradientCheckpointingLayer):
    """
    One interaction layer. Each modality token t_a (position 0 of a's sequence) attends to the other modalities'
    sequences (what a can extract from them), then a's sequence `[t_a ; X_a]` updates by self-attention. The global
    token attends to every modality's sequence, then passes a feed-forward block. The sequences come and go joined
    along the length axis, so that gradient checkpointing (reentrant or not) sees the tensors it must recompute.
    """

    def __init__(self, config: MiarConfig):
        super().__init__()

        def per_modality(factory) -> nn.ModuleDict:
            return nn.ModuleDict({m: factory() for m in config.modalities})

        norm = lambda: nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # noqa: E731
        self.token_attention = per_modality(lambda: MultimodalAttention(config))
        self.token_norm = per_modality(norm)
        self.sequence_layers = per_modality(lambda: MultimodalTransformerLayer(config))
        self.global_attention = MultimodalAttention(config)
        self.global_norm = norm()
        self.global_feed_forward = MultimodalFeedForward(config)
        self.global_output_norm = norm()
        self.num_heads = config.num_attention_heads
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.pairs = config.modality_pairs

    def forward(
        self,
        hidden_states: torch.Tensor,
        global_token: torch.Tensor,
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """
        `hidden_states`: the present modalities' sequences joined in `masks`' order, each (batch, 1 + L_m, d) with
        its token first; `masks[m]` (batch, 1 + L_m). Returns the new joined sequences and global token, the
        attention mass per configured ordered pair (batch, num_pairs; 0 where not computed) and, with
        `output_attentions`, the sequences' self-attention and the tokens' attention over the other modalities, each
        as one matrix over the joined sequences.
        """
        sequences = split_joined(hidden_states, masks)
        # A sample's positions of a modality it lacks are no key for anyone.
        keys = {m: (x[:, 1:], masks[m][:, 1:] * presence[m][:, None]) for m, x in sequences.items()}
        at = joined_positions(sequences)
        recorded = [attention_matrix(sequences, self.num_heads) if output_attentions else None for _ in range(2)]
        others = {a: [b for b in keys if b != a] for a in keys}
        gathered = {a: gather_keys([keys[b] for b in others[a]]) for a in keys if others[a]}
        contexts, token_weights = attend_jointly(
            {
                a: AttentionBlock(
                    self.token_attention[a],
                    sequences[a][:, :1],
                    states,
                    key_padding_to_additive_mask(mask, states.dtype),
                    at[a][:1],
                    torch.cat([at[b][1:] for b in others[a]]),
                )
                for a, (states, mask) in gathered.items()
            },
            recorded[1],
            need_weights=True,
        )
        masses, updated = {}, {}
        for a, x_a in sequences.items():
            context = torch.zeros_like(x_a[:, :1])  # nothing to gather without other modalities, as when all absent
            if a in gathered:
                context = contexts[a] * has_keys(gathered[a][1])[:, None, None]
                lengths = [keys[b][0].shape[1] for b in others[a]]
                for b, block in zip(others[a], torch.split(token_weights[a], lengths, dim=-1)):
                    masses[(a, b)] = block.sum(dim=-1).mean(dim=(1, 2)) * presence[a] * presence[b]
            updated[a] = torch.cat([self.token_norm[a](x_a[:, :1] + self.dropout(context)), x_a[:, 1:]], 1)
        attended, _ = attend_jointly(
            {
                a: AttentionBlock(
                    self.sequence_layers[a].self_attention,
                    x,
                    x,
                    key_padding_to_additive_mask(masks[a], x.dtype),
                    at[a],
                    at[a],
                )
                for a, x in updated.items()
            },
            recorded[0],
        )
        new_sequences = {a: self.sequence_layers[a].update(x, attended[a]) for a, x in updated.items()}
        states, mask = gather_keys(list(keys.values()))
        additive = key_padding_to_additive_mask(mask, states.dtype)
        context, _ = self.global_attention(global_token, states, additive, need_weights=True)  # eager, like the tokens
        global_token = self.global_norm(global_token + self.dropout(context * has_keys(mask)[:, None, None]))
        global_token = self.global_output_norm(global_token + self.global_feed_forward(global_token))
        return join(new_sequences), global_token, per_pair(masses, self.pairs, presence), *recorded


def gather_keys(keys: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sequence, mask) pairs joined along the length axis: what a token attends to."""
    return torch.cat([k for k, _ in keys], dim=1), torch.cat([m for _, m in keys], dim=1)


def has_keys(mask: torch.Tensor) -> torch.Tensor:
    """1 for the samples with a valid key, 0 for the others (which get no context from the attention)."""
    return (mask.sum(dim=1) > 0).to(mask.dtype)


def info_nce(z_a: torch.Tensor, z_b: torch.Tensor, weights: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """
    Symmetric InfoNCE between rows of z_a and z_b (row i of each: the same sample) over the samples where `weights`
    is 1: each sample's pair is told from the other samples' (cosine similarity / temperature).
    """
    z_a, z_b = nn.functional.normalize(z_a, dim=-1), nn.functional.normalize(z_b, dim=-1)
    logits = (z_a @ z_b.T) / temperature
    excluded = (weights == 0)[None, :]
    targets = torch.arange(logits.shape[0], device=logits.device)
    a_to_b = nn.functional.cross_entropy(logits.masked_fill(excluded, -1e4), targets, reduction="none")
    b_to_a = nn.functional.cross_entropy(logits.T.masked_fill(excluded, -1e4), targets, reduction="none")
    return weighted_mean((a_to_b + b_to_a) / 2, weights)


class ContrastiveAlignment(nn.Module):
    """
    Aligns the modality tokens: symmetric InfoNCE between the tokens of every two present modalities and between each
    modality token and the global token, averaged over the pairs some sample has; a sample missing a modality is left
    out of that modality's pairs.
    """

    def __init__(self, config: MiarConfig):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()), requires_grad=config.learnable_temperature)
        self.initial_values = {"log_temperature": math.log(config.contrastive_temperature)}

    def forward(
        self, tokens: dict[str, torch.Tensor], global_token: torch.Tensor, presence: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        candidates = [(tokens[a], tokens[b], presence[a] * presence[b]) for a, b in itertools.combinations(tokens, 2)]
        candidates += [(tokens[m], global_token, presence[m]) for m in tokens]
        temperature = self.log_temperature.exp()
        terms = [(info_nce(z_a, z_b, both, temperature), both) for z_a, z_b, both in candidates]
        return mean_over_given(terms, global_token)


class MiarModel(MultimodalModel):
    """The shared front end -> modality interaction layers (modality and global tokens) -> contrastive alignment."""

    config_class = MiarConfig
    base_model_prefix = "miar"
    learned_embeddings = ("modality_tokens", "global_token", "missing_tokens")
    _fusion_no_split_modules = ("ModalityInteraction",)

    def __init__(self, config: MiarConfig):
        super().__init__(config)
        self.modality_tokens = nn.Parameter(torch.zeros(len(config.modalities), config.hidden_size))
        self.global_token = nn.Parameter(torch.zeros(config.hidden_size))
        self.missing_tokens = nn.Parameter(torch.zeros(len(config.modalities), config.hidden_size))
        self.interaction_layers = nn.ModuleList(
            [ModalityInteraction(config) for _ in range(config.num_interaction_layers)]
        )
        self.alignment = ContrastiveAlignment(config)
        self.fused_size = (len(config.modalities) + 1) * config.hidden_size
        self.post_init()

    def fuse(
        self,
        states: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> MiarModelOutput:
        batch_size = next(iter(states.values())).shape[0]
        index = {m: i for i, m in enumerate(self.config.modalities)}
        sequences = {
            m: torch.cat([self.modality_tokens[index[m]].expand(batch_size, 1, -1), x], dim=1)
            for m, x in states.items()
        }
        masks = {m: nn.functional.pad(mask, (1, 0), value=1) for m, mask in masks.items()}
        global_token = self.global_token.expand(batch_size, 1, -1)
        mass_sums = per_pair({}, self.config.modality_pairs, presence)
        hidden_states = join(sequences)
        all_hidden_states, all_attentions, all_cross_attentions = [hidden_states], [], []
        for layer in self.interaction_layers:
            hidden_states, global_token, masses, attentions, cross_attentions = layer(
                hidden_states, global_token, masks, presence, output_attentions
            )
            mass_sums = mass_sums + masses
            all_hidden_states.append(hidden_states)
            all_attentions.append(attentions)
            all_cross_attentions.append(cross_attentions)
        tokens = {m: x[:, 0] for m, x in split_joined(hidden_states, masks).items()}
        modality_embeddings = slots(tokens, presence, self.missing_tokens, self.config.modalities)
        global_token = global_token[:, 0]
        return MiarModelOutput(
            fused_embedding=torch.cat([modality_embeddings.flatten(1), global_token], dim=-1),
            modality_embeddings=modality_embeddings,
            global_embedding=global_token,
            modality_mask=presence_mask(presence, self.config.modalities),
            gate_values=mass_sums / max(len(self.interaction_layers), 1),
            contrastive_loss=self.alignment(tokens, global_token, presence),
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
            cross_attentions=tuple(all_cross_attentions) if output_attentions else None,
            modality_lengths=self.modality_lengths(states, extra=1),
        )


class MiarForEmotionRecognition(MultimodalForEmotionRecognition):
    """MIAR with an MLP head on the four tokens: emotion classes, or a sentiment score (regression)."""

    config_class = MiarConfig
    base_model_prefix = "miar"
    base_model_class = MiarModel
    output_class = MiarEmotionRecognitionOutput
    loss_names = ("classification_loss", "contrastive_loss")

    def __init__(self, config: MiarConfig):
        super().__init__(config)
        self.miar = MiarModel(config)
        self.classifier = emotion_classifier(config, self.miar.fused_size)
        self.post_init()

    def compute_loss(
        self, outputs: MiarModelOutput, logits: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """L = L_task + lambda_con * L_con: the task loss and the contrastive alignment of the modality tokens."""
        classification_loss = self.task_loss(logits, labels)
        loss = classification_loss + self.config.contrastive_weight * outputs.contrastive_loss
        return {"loss": loss, "classification_loss": classification_loss}


register_architecture(MiarForEmotionRecognition)

__all__ = [
    "ContrastiveAlignment",
    "MiarEmotionRecognitionOutput",
    "MiarForEmotionRecognition",
    "MiarModel",
    "MiarModelOutput",
    "ModalityInteraction",
]
