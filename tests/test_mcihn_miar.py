"""
The ideas of MCIHN and MIAR, each pinned by its definition: the gradient reversal of MCIHN's adversarial
autoencoders, its reconstruction and MMD; MIAR's contrastive alignment and its handling of absent modalities.
"""

import pytest
import torch
from conftest import feature_config, feature_inputs

from modeling_gia_mic import McihnForEmotionRecognition, MiarForEmotionRecognition
from modeling_gia_mic.modeling_mcihn import AdversarialAutoencoder, maximum_mean_discrepancy
from modeling_gia_mic.modeling_miar import info_nce


NO_DROPOUT = {"hidden_dropout": 0.0, "attention_dropout": 0.0, "classifier_dropout": 0.0}


def test_the_adversarial_term_trains_discriminator_and_encoder_in_opposite_directions():
    autoencoder = AdversarialAutoencoder(feature_config(("text",), architecture="mcihn"))
    code = torch.randn(6, 32, requires_grad=True)
    torch.manual_seed(0)
    autoencoder.adversarial_loss(code, torch.ones(6)).backward()
    through_reversal = code.grad.clone()
    discriminator_grads = [p.grad.clone() for p in autoencoder.discriminator.parameters()]

    # The discriminator's own loss on the same codes and prior draws, without the reversal.
    autoencoder.zero_grad()
    plain = code.detach().clone().requires_grad_(True)
    torch.manual_seed(0)
    prior = torch.randn_like(plain) * autoencoder.prior_std
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    real, fake = autoencoder.discriminator(prior).squeeze(-1), autoencoder.discriminator(plain).squeeze(-1)
    (bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))).backward()

    assert through_reversal.abs().sum() > 0
    torch.testing.assert_close(through_reversal, -plain.grad, msg="the codes (encoder side) climb what D descends")
    for reversed_grad, parameter in zip(discriminator_grads, autoencoder.discriminator.parameters()):
        torch.testing.assert_close(reversed_grad, parameter.grad)  # the discriminator itself descends


def test_training_only_the_reconstruction_lowers_it():
    model = McihnForEmotionRecognition(feature_config(architecture="mcihn", **NO_DROPOUT)).train()
    inputs = feature_inputs(batch_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(**inputs).reconstruction_loss
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_mmd_is_zero_for_identical_codes_and_positive_otherwise():
    codes, weights, bandwidths = torch.randn(10, 16), torch.ones(10), [1.0, 2.0, 4.0]
    assert maximum_mean_discrepancy(codes, codes.clone(), weights, bandwidths).abs().item() < 1e-7
    assert maximum_mean_discrepancy(codes, codes[torch.randperm(10)], weights, bandwidths).abs().item() < 1e-6
    assert maximum_mean_discrepancy(codes, codes + 1.0, weights, bandwidths).item() > 1e-2
    assert maximum_mean_discrepancy(codes, 3 * torch.randn(10, 16), weights, bandwidths).item() > 1e-2
    # A sample without both modalities is left out: changing its code changes nothing.
    shifted = codes.clone()
    shifted[3] += 100.0
    partial = torch.ones(10)
    partial[3] = 0.0
    torch.testing.assert_close(
        maximum_mean_discrepancy(codes, shifted, partial, bandwidths),
        maximum_mean_discrepancy(codes, codes, partial, bandwidths),
    )


def test_mcihn_reports_every_loss_term_and_gates_per_ordered_pair():
    model = McihnForEmotionRecognition(feature_config(architecture="mcihn")).eval()
    output = model(**feature_inputs(("text", "audio")), labels=torch.tensor([0, 1, 2]))
    for name in ("reconstruction_loss", "adversarial_loss", "mmd_loss", "unimodal_loss"):
        assert output[name].dim() == 0 and torch.isfinite(output[name]), name
    present = [set(pair) <= {"text", "audio"} for pair in model.config.modality_pairs]
    assert ((output.gate_values > 0) == torch.tensor(present)).all()


def test_info_nce_is_lower_for_aligned_pairs_than_for_shuffled_ones():
    z = torch.randn(16, 32)
    aligned = info_nce(z, z + 0.1 * torch.randn(16, 32), torch.ones(16), torch.tensor(0.07))
    shuffled = info_nce(z, z[torch.roll(torch.arange(16), 1)], torch.ones(16), torch.tensor(0.07))
    assert aligned.item() < 0.1 < shuffled.item()


def test_info_nce_leaves_out_samples_without_both_modalities():
    z_a, z_b = torch.randn(6, 8), torch.randn(6, 8)
    weights = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    kept = weights.bool()
    expected = info_nce(z_a[kept], z_b[kept], torch.ones(4), torch.tensor(0.1))
    torch.testing.assert_close(info_nce(z_a, z_b, weights, torch.tensor(0.1)), expected)
    single = info_nce(z_a[:1], z_b[:1], torch.ones(1), torch.tensor(0.1))
    assert single.item() == 0.0, "one sample is its own only candidate"


@pytest.mark.parametrize("batch_size", [1, 3])
def test_miar_with_a_sample_missing_a_modality_has_a_finite_contrastive_loss(batch_size):
    model = MiarForEmotionRecognition(feature_config(architecture="miar", modality_dropout=0.5)).train()
    torch.manual_seed(1)
    for _ in range(5):
        output = model(**feature_inputs(batch_size=batch_size), labels=torch.zeros(batch_size, dtype=torch.long))
        assert torch.isfinite(output.contrastive_loss) and torch.isfinite(output.loss)
        output.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_miar_gate_values_are_the_attention_mass_on_each_other_modality():
    model = MiarForEmotionRecognition(feature_config(architecture="miar")).eval()
    gates = model(**feature_inputs()).gate_values
    pairs = model.config.modality_pairs
    for query in model.config.modalities:
        columns = [i for i, (a, _) in enumerate(pairs) if a == query]
        torch.testing.assert_close(gates[:, columns].sum(1), torch.ones(3), msg="a token's mass over the others is 1")
    temperature = MiarForEmotionRecognition(feature_config(architecture="miar", learnable_temperature=True))
    assert temperature.miar.alignment.log_temperature.requires_grad
    assert temperature.miar.alignment.log_temperature.exp().item() == pytest.approx(0.07)
