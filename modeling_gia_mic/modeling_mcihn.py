"""
PyTorch MCIHN (reconstruction): adversarial autoencoders per modality, a cross-modal gate mechanism with an MMD
constraint, and a feature fusion module, on the front end shared with GIA-MIC and MIAR.
"""

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN

from .configuration_mcihn import McihnConfig
from .modeling_attention import MultimodalAttention, key_padding_to_additive_mask
from .modeling_head import MultimodalForEmotionRecognition, mean_over_given, register_architecture, weighted_mean
from .modeling_layers import MultimodalTransformerLayer, masked_mean, mlp, pair_name, per_pair, presence_mask, slots
from .modeling_multimodal import MultimodalModel
from .modeling_outputs import MultimodalEmotionRecognitionOutput, MultimodalModelOutput


@dataclass
class McihnModelOutput(MultimodalModelOutput):
    r"""
    fused_embedding (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
        Mean of the feature fusion module's output tokens.
    modality_embeddings (`torch.FloatTensor` of shape `(batch_size, num_modalities, latent_size)`):
        The autoencoders' codes `s_m` (masked means of the latent sequences), the learned "missing" token where a
        modality is absent.
    gate_values (`torch.FloatTensor` of shape `(batch_size, num_pairs)`):
        Mean cross-modal gate `G_(a<-b)` of each ordered pair `config.modality_pairs`, over query positions and
        channels: how much of b's context replaced a's own latent sequence. 0 where a pair is absent.
    hidden_states (`tuple[torch.FloatTensor]`, *optional*):
        `num_fusion_layers + 1` tensors of shape `(batch_size, num_tokens, latent_size)`: the fusion module's tokens
        (`[s_m for each modality] + [i_(a<-b) for each ordered pair]`) before and after each layer.
    attentions (`tuple[torch.FloatTensor]`, *optional*, computed eagerly):
        Per fusion layer `(batch_size, num_heads, num_tokens, num_tokens)`.
    reconstruction_loss, adversarial_loss, mmd_loss (`torch.FloatTensor` of shape `()`):
        The autoencoders' masked MSE, their adversarial (prior-matching) loss and the CGMM's MMD between codes.
    Other fields: see [`MultimodalModelOutput`].
    """

    reconstruction_loss: torch.FloatTensor | None = None
    adversarial_loss: torch.FloatTensor | None = None
    mmd_loss: torch.FloatTensor | None = None


@dataclass
class McihnEmotionRecognitionOutput(MultimodalEmotionRecognitionOutput):
    r"""
    loss: `classification_loss` + the weighted `reconstruction_loss`, `adversarial_loss`, `mmd_loss` and
    `unimodal_loss` (`config.*_weight`).
    unimodal_loss (`torch.FloatTensor` of shape `()`, *optional*, with `labels`):
        The task loss of a linear classifier on each modality's code, averaged over the present modalities.
    Other fields: see [`McihnModelOutput`] and [`MultimodalEmotionRecognitionOutput`].
    """

    reconstruction_loss: torch.FloatTensor | None = None
    adversarial_loss: torch.FloatTensor | None = None
    mmd_loss: torch.FloatTensor | None = None
    unimodal_loss: torch.FloatTensor | None = None


class GradientReversal(torch.autograd.Function):
    """Identity forward, negated gradient backward: what minimises the loss for one side maximises it for the other."""

    @staticmethod
    def forward(ctx, values: torch.Tensor) -> torch.Tensor:
        return values.view_as(values)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        return -grad_output


def fixed_normal_draw(like: torch.Tensor) -> torch.Tensor:
    """
    The same N(0, 1) draw every call, shaped like `like`: Box-Muller on two additive recurrences (golden-ratio
    sequences), which are equidistributed on (0, 1); no random state, so it also traces into an exported graph.
    """
    index = torch.arange(1, like.numel() + 1, device=like.device, dtype=torch.float64)
    uniform, angle = torch.frac(index * 0.6180339887498949), torch.frac(index * 0.7548776662466927)
    draw = torch.sqrt(-2.0 * torch.log(uniform)) * torch.cos(2.0 * math.pi * angle)
    return draw.view(like.shape).to(like.dtype)


class AdversarialAutoencoder(nn.Module):
    """
    One modality's AAE. An encoder maps each step of the projected sequence into a latent sequence S (k wide,
    standardised per step: the prior's scale, and one the rest of the network learns from whatever the
    initialisation); its masked mean is the code s. A decoder reconstructs the sequence from S. A discriminator
    learns to tell samples of the prior N(0, prior_std^2 I) from codes, while the encoder, behind a gradient-reversal
    layer, learns to fool it: both sides train from the one adversarial loss in the same backward pass.
    """

    def __init__(self, config: McihnConfig):
        super().__init__()
        self.prior_std = config.prior_std
        self.encoder = mlp(config.hidden_size, config, config.latent_size)
        self.latent_norm = nn.LayerNorm(config.latent_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.decoder = mlp(config.latent_size, config, config.hidden_size)
        self.discriminator = mlp(config.latent_size, config, 1)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, presence: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns the latent sequence, the code, and the reconstruction and adversarial losses over `presence`."""
        latent = self.latent_norm(self.encoder(states))
        code = masked_mean(latent, mask)
        # The target is what the front end gave: reconstructing it must not pull the projection towards zero.
        error = ((self.decoder(latent) - states.detach()) ** 2).mean(dim=-1)
        reconstruction_loss = weighted_mean(masked_mean(error, mask), presence)
        return latent, code, reconstruction_loss, self.adversarial_loss(code, presence)

    def adversarial_loss(self, code: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """
        BCE(D(prior sample), 1) + BCE(D(reverse(code)), 0), over the samples that have the modality. In training the
        prior is sampled afresh; in evaluation it is one fixed draw, so that a model's outputs are deterministic.
        """
        draw = torch.randn_like(code) if self.training else fixed_normal_draw(code)
        prior = draw * self.prior_std
        real = self.discriminator(prior).squeeze(-1)
        fake = self.discriminator(GradientReversal.apply(code)).squeeze(-1)
        bce = nn.functional.binary_cross_entropy_with_logits
        per_sample = bce(real, torch.ones_like(real), reduction="none") + bce(
            fake, torch.zeros_like(fake), reduction="none"
        )
        return weighted_mean(per_sample, presence)


def maximum_mean_discrepancy(
    x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, bandwidths: list[float]
) -> torch.Tensor:
    """
    Squared MMD (biased estimate) between the rows of x and y where `weights` is 1, with the mean of Gaussian kernels
    exp(-||u - v||^2 / (2 sigma^2 k)) over `bandwidths` (k: the width). 0 for identical sets, positive otherwise.
    """
    width = x.shape[-1]
    points = torch.cat([x, y], dim=0)
    distances = ((points[:, None] - points[None]) ** 2).sum(dim=-1) / width
    kernel = sum(torch.exp(-distances / (2.0 * sigma**2)) for sigma in bandwidths) / len(bandwidths)
    signs = torch.cat([weights, -weights])
    return (signs[:, None] * kernel * signs[None, :]).sum() / weights.sum().clamp(min=1.0) ** 2


class CrossModalGateMechanism(nn.Module):
    """
    CGMM. Per ordered pair (a <- b): C = CrossAttn(S_a, S_b), G = sigmoid(W [S_a ; C]), I = G * C + (1 - G) * S_a,
    pooled over a's steps into the interaction feature i_(a<-b). Its MMD constraint pulls the codes of every two
    modalities towards one distribution.
    """

    def __init__(self, config: McihnConfig):
        super().__init__()
        self.bandwidths = config.mmd_kernel_bandwidths
        pairs = [pair_name(a, b) for a, b in config.modality_pairs]
        self.cross_attention = nn.ModuleDict({p: MultimodalAttention(config, config.latent_size) for p in pairs})
        self.gates = nn.ModuleDict({p: nn.Linear(2 * config.latent_size, config.latent_size) for p in pairs})

    def forward(
        self, latents: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], presence: dict[str, torch.Tensor]
    ) -> tuple[dict[tuple[str, str], torch.Tensor], dict[tuple[str, str], torch.Tensor]]:
        """Returns the interaction feature (batch, k) and the mean gate (batch,) of each present ordered pair."""
        interactions, gate_means = {}, {}
        for a, s_a in latents.items():
            for b, s_b in latents.items():
                if a == b:
                    continue
                name = pair_name(a, b)
                additive = key_padding_to_additive_mask(masks[b], s_b.dtype)
                context, _ = self.cross_attention[name](s_a, s_b, additive)
                gate = torch.sigmoid(self.gates[name](torch.cat([s_a, context], dim=-1))) * presence[b][:, None, None]
                interactions[(a, b)] = masked_mean(gate * context + (1.0 - gate) * s_a, masks[a])
                gate_means[(a, b)] = masked_mean(gate.mean(dim=-1), masks[a]) * presence[a]
        return interactions, gate_means

    def mmd_loss(self, codes: dict[str, torch.Tensor], presence: dict[str, torch.Tensor]) -> torch.Tensor:
        """MMD between the codes of every unordered pair, on the samples with both, averaged over such pairs."""
        terms = []
        for a, b in itertools.combinations(codes, 2):
            both = presence[a] * presence[b]
            terms.append((maximum_mean_discrepancy(codes[a], codes[b], both, self.bandwidths), both))
        return mean_over_given(terms, next(iter(codes.values())))


class FeatureFusionModule(nn.Module):
    """
    FFM: the tokens [s_m for every modality] + [i_(a<-b) for every ordered pair] (a learned "missing" token where a
    sample lacks the modality or the pair, plus a learned embedding saying which token is which) -> LayerNorm ->
    transformer layers -> mean over tokens (the input norm puts codes, interaction features and learned tokens on one
    scale).
    """

    learned_embeddings = ("token_embeddings", "missing_tokens")

    def __init__(self, config: McihnConfig):
        super().__init__()
        self.names = (*config.modalities, *config.modality_pairs)
        self.token_embeddings = nn.Parameter(torch.zeros(len(self.names), config.latent_size))
        self.missing_tokens = nn.Parameter(torch.zeros(len(self.names), config.latent_size))
        self.input_norm = nn.LayerNorm(config.latent_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(
            [MultimodalTransformerLayer(config, config.latent_size) for _ in range(config.num_fusion_layers)]
        )

    def forward(
        self,
        features: dict,
        presence: dict,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple | None, tuple | None]:
        """
        `features` and `presence` are keyed by modality (codes) and by ordered pair (interaction features). Returns
        the fused vector, the token slots before the embeddings (batch, tokens, k), hidden states and attentions.
        """
        tokens = slots(features, presence, self.missing_tokens, self.names)
        hidden_states = self.input_norm(tokens + self.token_embeddings)
        mask = torch.ones_like(hidden_states[..., 0])
        all_hidden_states, all_attentions = [hidden_states], []
        for layer in self.layers:
            hidden_states, weights = layer(hidden_states, mask, output_attentions)
            all_hidden_states.append(hidden_states)
            if output_attentions:
                all_attentions.append(weights)
        return (
            hidden_states.mean(dim=1),
            tokens,
            tuple(all_hidden_states) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
        )


class McihnModel(MultimodalModel):
    """The shared front end -> adversarial autoencoders -> cross-modal gate mechanism -> feature fusion module."""

    config_class = McihnConfig
    base_model_prefix = "mcihn"
    _fusion_no_split_modules = ("AdversarialAutoencoder", "CrossModalGateMechanism", "MultimodalTransformerLayer")

    def __init__(self, config: McihnConfig):
        super().__init__(config)
        self.autoencoders = nn.ModuleDict({m: AdversarialAutoencoder(config) for m in config.modalities})
        self.cross_modal_gates = CrossModalGateMechanism(config)
        self.feature_fusion = FeatureFusionModule(config)
        self.fused_size = config.latent_size
        self.post_init()

    def fuse(
        self,
        states: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        presence: dict[str, torch.Tensor],
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> McihnModelOutput:
        latents, codes, reconstruction, adversarial = {}, {}, [], []
        for m, x in states.items():
            latents[m], codes[m], rec, adv = self.autoencoders[m](x, masks[m], presence[m])
            reconstruction.append(rec)
            adversarial.append(adv)
        interactions, gate_means = self.cross_modal_gates(latents, masks, presence)
        pair_presence = {(a, b): presence[a] * presence[b] for (a, b) in interactions}
        fused, tokens, hidden_states, attentions = self.feature_fusion(
            {**codes, **interactions}, {**presence, **pair_presence}, output_hidden_states, output_attentions
        )
        return McihnModelOutput(
            fused_embedding=fused,
            modality_embeddings=tokens[:, : len(self.config.modalities)],
            modality_mask=presence_mask(presence, self.config.modalities),
            gate_values=per_pair(gate_means, self.config.modality_pairs, presence),
            reconstruction_loss=torch.stack(reconstruction).mean(),
            adversarial_loss=torch.stack(adversarial).mean(),
            mmd_loss=self.cross_modal_gates.mmd_loss(codes, presence),
            hidden_states=hidden_states,
            attentions=attentions,
        )


class McihnClassificationHead(nn.Module):
    """
    MCIHN's classifiers: an MLP on the fused tokens (`dense` -> activation -> dropout -> `out_proj`), and a linear
    classifier on each modality's code (`text_classifier`, ...), which supervises that code alone.
    """

    def __init__(self, config: McihnConfig, fused_size: int):
        super().__init__()
        self.dense = nn.Linear(fused_size, config.hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)
        for modality in config.modalities:
            self.add_module(f"{modality}_classifier", nn.Linear(config.latent_size, config.num_labels))

    def forward(self, fused_embedding: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(self.activation(self.dense(fused_embedding))))

    def unimodal(self, modality: str, code: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"{modality}_classifier")(code)


class McihnForEmotionRecognition(MultimodalForEmotionRecognition):
    """MCIHN with an MLP head on the fused tokens, and a linear classifier on each modality's code."""

    config_class = McihnConfig
    base_model_prefix = "mcihn"
    base_model_class = McihnModel
    output_class = McihnEmotionRecognitionOutput
    loss_names = ("classification_loss", "reconstruction_loss", "adversarial_loss", "mmd_loss", "unimodal_loss")

    def __init__(self, config: McihnConfig):
        super().__init__(config)
        self.mcihn = McihnModel(config)
        self.classifier = McihnClassificationHead(config, self.mcihn.fused_size)
        self.post_init()

    def compute_loss(
        self, outputs: McihnModelOutput, logits: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """
        L = L_task + w_rec * L_rec + w_adv * L_adv + w_mmd * L_mmd + w_uni * L_uni: the task loss, the autoencoders'
        reconstruction and adversarial terms, the gates' MMD between codes, and each code's own classifier.
        """
        classification_loss = self.task_loss(logits, labels)
        unimodal_loss = self.unimodal_loss(outputs, labels)
        loss = (
            classification_loss
            + self.config.reconstruction_weight * outputs.reconstruction_loss
            + self.config.adversarial_weight * outputs.adversarial_loss
            + self.config.mmd_weight * outputs.mmd_loss
            + self.config.unimodal_weight * unimodal_loss
        )
        return {"loss": loss, "classification_loss": classification_loss, "unimodal_loss": unimodal_loss}

    def unimodal_loss(self, outputs: McihnModelOutput, labels: torch.Tensor) -> torch.Tensor:
        """The task loss of each modality's code alone, over the samples that have it, averaged over modalities."""
        terms = []
        for index, modality in enumerate(self.config.modalities):
            present = outputs.modality_mask[:, index].to(outputs.fused_embedding.dtype)
            logits = self.classifier.unimodal(modality, outputs.modality_embeddings[:, index])
            terms.append((weighted_mean(self.task_loss(logits, labels, reduction="none"), present), present))
        return mean_over_given(terms, outputs.fused_embedding)


register_architecture(McihnForEmotionRecognition)

__all__ = [
    "AdversarialAutoencoder",
    "CrossModalGateMechanism",
    "FeatureFusionModule",
    "McihnEmotionRecognitionOutput",
    "McihnForEmotionRecognition",
    "McihnModel",
    "McihnModelOutput",
]
