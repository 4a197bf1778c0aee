"""PyTorch GIA-MIC: gated interactive attention + modality-invariant generator for multimodal emotion recognition."""

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention_recording import AttentionBlock, attend_jointly, attention_matrix, join, joined_positions, split_joined
from .configuration_gia_mic import GiaMicConfig
from .modeling_attention import MultimodalAttention, key_padding_to_additive_mask
from .modeling_head import (
    MultimodalForEmotionRecognition,
    emotion_classifier,
    mean_over_given,
    register_architecture,
    weighted_mean,
)
from .modeling_layers import MultimodalFeedForward, masked_mean, pair_name, per_pair, presence_mask, slots
from .modeling_multimodal import MultimodalModel
from .modeling_outputs import MultimodalEmotionRecognitionOutput, MultimodalModelOutput


@dataclass
class GiaMicModelOutput(MultimodalModelOutput):
    r"""
    fused_embedding (`torch.FloatTensor` of shape `(batch_size, (num_modalities + 1) * hidden_size)`):
        `[h_text ; h_audio ; h_vision ; mean_m z_m]` over the configured modalities, with the learned "missing"
        vector in place of an absent modality.
    modality_embeddings (`torch.FloatTensor` of shape `(batch_size, num_modalities, hidden_size)`):
        Modality-specific representations `h_m` (pooled GIA outputs), in `config.modalities` order.
    gate_values (`torch.FloatTensor` of shape `(batch_size, num_pairs)`):
        Mean gate value of each ordered pair `config.modality_pairs` (query, key), averaged over layers, query
        positions and channels: how much of the key modality flowed into the query modality. 0 where a pair is absent.
    hidden_states (`tuple[torch.FloatTensor]`, *optional*, returned when `output_hidden_states=True`):
        `num_gia_layers + 1` tensors of shape `(batch_size, total_length, hidden_size)`: the input of the first GIA
        layer and the output of every layer, with the present modalities' sequences joined along the length axis in
        `config.modalities` order (`total_length = modality_lengths.sum()`). `split_modalities(hidden_states[i],
        modality_lengths, config.modalities)` gives the per-modality view.
    attentions (`tuple[torch.FloatTensor]`, *optional*, with `output_attentions=True`, computed eagerly):
        Per GIA layer one tensor of shape `(batch_size, num_heads, total_length, total_length)` over the same joined
        sequence: each modality's self-attention weights in its diagonal block (rows and columns of modality a), zero
        elsewhere.
    cross_attentions (`tuple[torch.FloatTensor]`, *optional*, with `output_attentions=True`, computed eagerly):
        Per GIA layer the cross-attention weights in the same layout: the block of rows of modality a and columns of
        modality b holds a's attention over b (a != b), zero on the diagonal blocks. Each row of a block sums to 1
        over b's valid positions; `attentions[i] + cross_attentions[i]` shows a layer's whole attention at once.
        Both are upstream of the layer's outputs: `retain_grad()` on them sees the gradients.
    invariant_embeddings (`torch.FloatTensor` of shape `(batch_size, num_modalities, hidden_size)`):
        Modality-invariant representations `z_m = G(h_m)`; zero where a modality is absent.
    invariance_loss (`torch.FloatTensor` of shape `()`):
        The modality-invariance constraint `L_inv` of the generator.
    Other fields: see [`MultimodalModelOutput`].
    """

    invariant_embeddings: torch.FloatTensor | None = None
    invariance_loss: torch.FloatTensor | None = None


@dataclass
class GiaMicEmotionRecognitionOutput(MultimodalEmotionRecognitionOutput):
    r"""
    loss: `classification_loss + config.invariance_weight * invariance_loss`.
    invariant_embeddings, invariance_loss: See [`GiaMicModelOutput`]. Other fields: see
    [`MultimodalEmotionRecognitionOutput`].
    """

    invariant_embeddings: torch.FloatTensor | None = None
    invariance_loss: torch.FloatTensor | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Gated interactive attention
# ---------------------------------------------------------------------------------------------------------------------


class GiaMicInteractionGate(nn.Module):
    """
    G = sigmoid(W_g [S_a ; C_(a<-b)] + b_g): how much of the cross-modal context C enters modality a, per position
    and channel (`"elementwise"`), per position (`"scalar"`), or always fully (`"none"`: the plain cross-attention
    ablation).
    """

    def __init__(self, config: GiaMicConfig):
        super().__init__()
        self.gate_type = config.gate_type
        if config.gate_type != "none":
            width = config.hidden_size if config.gate_type == "elementwise" else 1
            self.dense = nn.Linear(2 * config.hidden_size, width)

    def forward(self, specific: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.gate_type == "none":
            return torch.ones_like(context[..., :1])
        return torch.sigmoid(self.dense(torch.cat([specific, context], dim=-1)))


class GatedInteractiveAttentionLayer(GradientCheckpointingLayer):
    """
    One GIA layer. For each present modality a:
    S_a = LN(X_a + SelfAttn(X_a));  C_(a<-b) = CrossAttn(S_a, S_b);  G_(a<-b) = gate(S_a, C_(a<-b));
    Y_a = LN(S_a + Dropout(sum_b G_(a<-b) * C_(a<-b)));  X_a <- LN(Y_a + FFN(Y_a)).
    The modalities' sequences come and go joined along the length axis, so that gradient checkpointing (reentrant or
    not) sees the tensor it must recompute.
    """

    def __init__(self, config: GiaMicConfig):
        super().__init__()
        modalities, pairs = config.modalities, [pair_name(a, b) for a, b in config.modality_pairs]

        def per(names: list[str] | tuple[str, ...], factory: Callable[[], nn.Module]) -> nn.ModuleDict:
            return nn.ModuleDict({name: factory() for name in names})

        self.self_attention = per(modalities, lambda: MultimodalAttention(config))
        self.self_attention_norm = per(modalities, lambda: nn.LayerNorm(config.hidden_size, config.layer_norm_eps))
        self.cross_attention = per(pairs, lambda: MultimodalAttention(config))
        self.gates = per(pairs, lambda: GiaMicInteractionGate(config))
        self.interaction_norm = per(modalities, lambda: nn.LayerNorm(config.hidden_size, config.layer_norm_eps))
        self.feed_forward = per(modalities, lambda: MultimodalFeedForward(config))
        self.output_norm = per(modalities, lambda: nn.LayerNorm(config.hidden_size, config.layer_norm_eps))
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.num_heads = config.num_attention_heads
        self.pairs = config.modality_pairs

    def forward(
        self,
        hidden_states: torch.Tensor,
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """
        `hidden_states`: the present modalities' sequences joined in `masks`' order. Returns the new joined states,
        the mean gate per configured ordered pair (batch, num_pairs; 0 where not computed) and, with
        `output_attentions`, the self-attention and the cross-attention weights, each as one matrix over the joined
        sequence.
        """
        states = split_joined(hidden_states, masks)
        additive = {m: key_padding_to_additive_mask(mask, states[m].dtype) for m, mask in masks.items()}
        at = joined_positions(states)
        recorded = [attention_matrix(states, self.num_heads) if output_attentions else None for _ in range(2)]
        attended, _ = attend_jointly(
            {m: AttentionBlock(self.self_attention[m], x, x, additive[m], at[m], at[m]) for m, x in states.items()},
            recorded[0],
        )
        specific = {m: self.self_attention_norm[m](x + self.dropout(attended[m])) for m, x in states.items()}
        contexts, _ = attend_jointly(
            {
                (a, b): AttentionBlock(
                    self.cross_attention[pair_name(a, b)], specific[a], specific[b], additive[b], at[a], at[b]
                )
                for a, b in itertools.permutations(specific, 2)
            },
            recorded[1],
        )
        outputs, gate_means = {}, {}
        for a, s_a in specific.items():
            interaction = torch.zeros_like(s_a)
            for b in (b for b in specific if b != a):
                gate = self.gates[pair_name(a, b)](s_a, contexts[(a, b)]) * presence[b][:, None, None]
                interaction = interaction + gate * contexts[(a, b)]
                gate_means[(a, b)] = masked_mean(gate.mean(dim=-1), masks[a]) * presence[a]
            fused = self.interaction_norm[a](s_a + self.dropout(interaction))
            outputs[a] = self.output_norm[a](fused + self.feed_forward[a](fused))
        return join(outputs), per_pair(gate_means, self.pairs, presence), *recorded


class GatedInteractiveAttention(nn.Module):
    """
    A stack of `config.num_gia_layers` gated interactive attention layers; with activation checkpointing on
    (`model.activation_checkpointing_enable()`, `TrainingArguments(gradient_checkpointing=True)`), each layer's
    activations are recomputed in the backward pass instead of stored.
    """

    def __init__(self, config: GiaMicConfig):
        super().__init__()
        self.pairs = config.modality_pairs
        self.layers = nn.ModuleList([GatedInteractiveAttentionLayer(config) for _ in range(config.num_gia_layers)])

    def forward(
        self,
        states: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, tuple | None, tuple | None, tuple | None]:
        """
        Returns the final states, the gate values (batch, num_pairs), and, when asked, the hidden states (per layer
        one tensor: the present modalities' sequences joined along the length axis), the self-attentions and the
        cross-attentions (per layer one matrix over that joined length; see `GiaMicModelOutput`).
        """
        gate_sums = per_pair({}, self.pairs, presence)
        hidden_states = join(states)
        all_hidden_states, all_attentions, all_cross_attentions = [hidden_states], [], []
        for layer in self.layers:
            hidden_states, gate_means, attentions, cross_attentions = layer(
                hidden_states, masks, presence, output_attentions
            )
            gate_sums = gate_sums + gate_means
            all_hidden_states.append(hidden_states)
            all_attentions.append(attentions)
            all_cross_attentions.append(cross_attentions)
        return (
            split_joined(hidden_states, masks),
            gate_sums / max(len(self.layers), 1),
            tuple(all_hidden_states) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
            tuple(all_cross_attentions) if output_attentions else None,
        )


class GiaMicPooling(nn.Module):
    """Masked mean, or masked attention pooling (a learned score per position), of a sequence into one vector."""

    def __init__(self, config: GiaMicConfig):
        super().__init__()
        self.pooling = config.pooling
        if config.pooling == "attention":
            self.score = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            return masked_mean(hidden_states, mask)
        scores = self.score(hidden_states).squeeze(-1).masked_fill(~mask.bool(), torch.finfo(hidden_states.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("bl,bld->bd", weights, hidden_states)


def similarity_alignment_loss(
    z_a: torch.Tensor, z_b: torch.Tensor, weights: torch.Tensor, similarity_weight: float
) -> torch.Tensor:
    """
    L_align + w * L_sim for one modality pair over the utterances where both are present (`weights` = 1):
    L_align = mean_i (1 - cos(z_a^i, z_b^i)); L_sim = ||K_a - K_b||_F^2 / B^2, K being those utterances'
    cosine-similarity matrix.
    """
    z_a, z_b = nn.functional.normalize(z_a, dim=-1), nn.functional.normalize(z_b, dim=-1)
    alignment = weighted_mean(1.0 - (z_a * z_b).sum(-1), weights)
    pair_weights = weights[:, None] * weights[None, :]
    similarity = ((z_a @ z_a.T - z_b @ z_b.T) ** 2 * pair_weights).sum() / pair_weights.sum().clamp(min=1.0)
    return alignment + similarity_weight * similarity


def central_moment_discrepancy(
    z_a: torch.Tensor, z_b: torch.Tensor, weights: torch.Tensor, num_moments: int
) -> torch.Tensor:
    """
    CMD (Zellinger et al., 2017) over the utterances where both are present: distance of the means plus of the
    central moments 2..K.
    """
    mean_a, mean_b = weighted_mean(z_a, weights), weighted_mean(z_b, weights)
    centered_a, centered_b = z_a - mean_a, z_b - mean_b
    discrepancy = torch.linalg.vector_norm(mean_a - mean_b)
    for order in range(2, num_moments + 1):
        moments = weighted_mean(centered_a**order, weights) - weighted_mean(centered_b**order, weights)
        discrepancy = discrepancy + torch.linalg.vector_norm(moments)
    return discrepancy


class ModalityInvariantGenerator(nn.Module):
    """
    G, shared by all modalities, maps every modality-specific representation h_m into one common space (z_m = G(h_m)),
    and computes the invariance constraint that pulls those spaces together, averaged over modality pairs.
    """

    def __init__(self, config: GiaMicConfig):
        super().__init__()
        self.config = config
        self.fc1 = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, modality_embeddings: dict[str, torch.Tensor], presence: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        invariant = {
            m: self.layer_norm(self.fc2(self.activation(self.fc1(h)))) for m, h in modality_embeddings.items()
        }
        return invariant, self.invariance_loss(invariant, presence)

    def invariance_loss(self, invariant: dict[str, torch.Tensor], presence: dict[str, torch.Tensor]) -> torch.Tensor:
        """
        Mean over the unordered modality pairs present together in some sample of the configured loss, on the samples
        where both are present. Written with per-sample weights, without data-dependent shapes or branches, so the
        model traces for `torch.export` / ONNX.
        """
        reference = next(iter(invariant.values()))
        if self.config.invariance_loss == "none":
            return reference.new_zeros(())
        terms = []
        for a, b in itertools.combinations(invariant, 2):
            both = presence[a] * presence[b]
            if self.config.invariance_loss == "similarity":
                loss = similarity_alignment_loss(invariant[a], invariant[b], both, self.config.similarity_weight)
            else:
                loss = central_moment_discrepancy(invariant[a], invariant[b], both, self.config.cmd_moments)
            terms.append((loss, both))
        return mean_over_given(terms, reference)


class GiaMicModel(MultimodalModel):
    """The shared front end -> gated interactive attention -> pooling -> modality-invariant generator."""

    config_class = GiaMicConfig
    base_model_prefix = "gia_mic"
    learned_embeddings = ("missing_embeddings",)
    _fusion_no_split_modules = ("GatedInteractiveAttentionLayer",)

    def __init__(self, config: GiaMicConfig):
        super().__init__(config)
        self.gated_interactive_attention = GatedInteractiveAttention(config)
        self.poolers = nn.ModuleDict({m: GiaMicPooling(config) for m in config.modalities})
        self.generator = ModalityInvariantGenerator(config)
        self.missing_embeddings = nn.Parameter(torch.zeros(len(config.modalities), config.hidden_size))
        self.fused_size = (len(config.modalities) + 1) * config.hidden_size
        self.post_init()

    def fuse(
        self,
        states: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> GiaMicModelOutput:
        lengths = self.modality_lengths(states)
        states, gate_values, hidden_states, attentions, cross_attentions = self.gated_interactive_attention(
            states, masks, presence, output_hidden_states, output_attentions
        )
        specific = {m: self.poolers[m](x, masks[m]) for m, x in states.items()}
        invariant, invariance_loss = self.generator(specific, presence)

        modality_embeddings = slots(specific, presence, self.missing_embeddings, self.config.modalities)
        invariant_embeddings = slots(
            invariant, presence, torch.zeros_like(self.missing_embeddings), self.config.modalities
        )
        modality_mask = presence_mask(presence, self.config.modalities)
        shared = invariant_embeddings.sum(1) / modality_mask.sum(1, keepdim=True).clamp(min=1)
        return GiaMicModelOutput(
            fused_embedding=torch.cat([modality_embeddings.flatten(1), shared], dim=-1),
            modality_embeddings=modality_embeddings,
            invariant_embeddings=invariant_embeddings,
            modality_mask=modality_mask,
            gate_values=gate_values,
            invariance_loss=invariance_loss,
            hidden_states=hidden_states,
            attentions=attentions,
            cross_attentions=cross_attentions,
            modality_lengths=lengths,
        )


class GiaMicForEmotionRecognition(MultimodalForEmotionRecognition):
    """GIA-MIC with an MLP head on the fused representation: emotion classes, or a sentiment score (regression)."""

    config_class = GiaMicConfig
    base_model_prefix = "gia_mic"
    base_model_class = GiaMicModel
    output_class = GiaMicEmotionRecognitionOutput
    loss_names = ("classification_loss", "invariance_loss")

    def __init__(self, config: GiaMicConfig):
        super().__init__(config)
        self.gia_mic = GiaMicModel(config)
        self.classifier = emotion_classifier(config, self.gia_mic.fused_size)
        self.post_init()

    def compute_loss(
        self, outputs: GiaMicModelOutput, logits: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """L = L_task + lambda_inv * L_inv: the task loss and the generator's modality-invariance constraint."""
        classification_loss = self.task_loss(logits, labels)
        loss = classification_loss + self.config.invariance_weight * outputs.invariance_loss
        return {"loss": loss, "classification_loss": classification_loss}


register_architecture(GiaMicForEmotionRecognition)

__all__ = [
    "GatedInteractiveAttention",
    "GiaMicEmotionRecognitionOutput",
    "GiaMicForEmotionRecognition",
    "GiaMicModel",
    "GiaMicModelOutput",
    "ModalityInvariantGenerator",
]
