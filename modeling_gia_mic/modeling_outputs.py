"""The outputs the three architectures share: the base model's and the emotion-recognition head's."""

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class MultimodalModelOutput(ModelOutput):
    r"""
    The outputs every architecture's base model returns; each adds its own auxiliary losses and representations.

    fused_embedding (`torch.FloatTensor` of shape `(batch_size, fused_size)`):
        The representation the classification head reads.
    modality_embeddings (`torch.FloatTensor` of shape `(batch_size, num_modalities, width)`):
        One vector per configured modality, in `config.modalities` order (the architecture says which), with the
        learned "missing" vector in place of an absent modality.
    modality_mask (`torch.BoolTensor` of shape `(batch_size, num_modalities)`):
        Which modalities were present for each sample (after modality dropout).
    gate_values (`torch.FloatTensor` of shape `(batch_size, num_pairs)`):
        Per ordered pair `config.modality_pairs` (query, key), how much of the key modality flowed into the query
        modality (the architecture says how it is measured); 0 where a pair is absent. The demo draws it.
    hidden_states (`tuple[torch.FloatTensor]`, *optional*, returned when `output_hidden_states=True`):
        Per layer of the fusion network one tensor of shape `(batch_size, sequence_length, width)`.
    attentions (`tuple[torch.FloatTensor]`, *optional*, with `output_attentions=True`, computed eagerly):
        Per layer one tensor of shape `(batch_size, num_heads, sequence_length, sequence_length)`: the weights of the
        layer's self-attention (within each modality's sequence where the architecture joins several).
    cross_attentions (`tuple[torch.FloatTensor]`, *optional*, with `output_attentions=True`, computed eagerly):
        Where a layer also attends from one modality to the others (GIA-MIC, MIAR), its weights in the same layout,
        zero outside the (query modality, key modality) blocks; `None` for an architecture without.
    modality_lengths (`torch.LongTensor` of shape `(num_modalities,)`, *optional*):
        Where the fusion network's sequence joins the modalities' sequences (GIA-MIC, MIAR): the length of each
        configured modality's part, 0 if absent; `split_modalities` gives the per-modality view.
    """

    fused_embedding: torch.FloatTensor | None = None
    modality_embeddings: torch.FloatTensor | None = None
    modality_mask: torch.BoolTensor | None = None
    gate_values: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    modality_lengths: torch.LongTensor | None = None


@dataclass
class MultimodalEmotionRecognitionOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
        `classification_loss` plus every auxiliary loss term times its config weight.
    logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
        Class scores (before softmax), or the predicted value for `problem_type="regression"`.
    classification_loss (`torch.FloatTensor` of shape `()`, *optional*):
        The supervised term: cross-entropy, or L1/MSE for regression.
    modality_embeddings, modality_mask, gate_values, hidden_states, attentions, cross_attentions, modality_lengths:
        See [`MultimodalModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    classification_loss: torch.FloatTensor | None = None
    modality_embeddings: torch.FloatTensor | None = None
    modality_mask: torch.BoolTensor | None = None
    gate_values: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    modality_lengths: torch.LongTensor | None = None


__all__ = ["MultimodalEmotionRecognitionOutput", "MultimodalModelOutput"]
