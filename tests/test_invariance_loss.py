"""Property tests of the modality-invariance constraint of the generator."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modeling_gia_mic import GiaMicConfig, ModalityInvariantGenerator


def generator(loss: str) -> ModalityInvariantGenerator:
    return ModalityInvariantGenerator(
        GiaMicConfig(text_feature_size=4, hidden_size=8, num_attention_heads=2, invariance_loss=loss)
    )


settings.register_profile("deterministic", derandomize=True, max_examples=60, deadline=None)
settings.load_profile("deterministic")

batches = st.tuples(st.integers(2, 6), st.integers(0, 10_000))
losses = st.sampled_from(["similarity", "cmd"])


def presence(batch: int, *names: str) -> dict[str, torch.Tensor]:
    return {name: torch.ones(batch) for name in names}


@given(batches, losses)
def test_zero_for_identical_representations(shape, loss):
    batch, seed = shape
    z = torch.randn(batch, 8, generator=torch.Generator().manual_seed(seed))
    value = generator(loss).invariance_loss(
        {"text": z, "audio": z.clone(), "vision": z.clone()}, presence(batch, "text", "audio", "vision")
    )
    assert abs(value.item()) < 1e-6


@given(batches, losses, st.floats(0.05, 3.0))
def test_positive_when_modalities_disagree(shape, loss, scale):
    batch, seed = shape
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, 8, generator=rng)
    other = z + scale * torch.randn(batch, 8, generator=rng)
    value = generator(loss).invariance_loss({"text": z, "audio": other}, presence(batch, "text", "audio"))
    assert value.item() > 1e-4


def test_similarity_loss_is_the_documented_formula():
    z_a, z_b = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # cos(a_i, b_i) = 1 and 1/sqrt(2); K_a = I, K_b = [[1, 1/sqrt2], [1/sqrt2, 1]]
    alignment = (0.0 + (1 - 2**-0.5)) / 2
    similarity = 2 * (2**-0.5) ** 2 / 4
    g = ModalityInvariantGenerator(
        GiaMicConfig(text_feature_size=2, hidden_size=2, num_attention_heads=1, similarity_weight=0.5)
    )
    value = g.invariance_loss({"text": z_a, "audio": z_b}, presence(2, "text", "audio"))
    assert abs(value.item() - (alignment + 0.5 * similarity)) < 1e-6


def test_only_samples_with_both_modalities_count():
    z = torch.randn(4, 8)
    disagreeing = z.clone()
    disagreeing[3] = -z[3]
    both_present = generator("similarity").invariance_loss(
        {"text": z, "audio": disagreeing}, {"text": torch.ones(4), "audio": torch.tensor([1.0, 1, 1, 0])}
    )
    assert abs(both_present.item()) < 1e-6, "the one disagreeing sample lacks audio, so it does not count"


def test_cmd_is_the_documented_sum_of_moment_distances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 8)).astype(np.float32), rng.normal(1.0, 2.0, size=(6, 8)).astype(np.float32)
    expected = np.linalg.norm(a.mean(0) - b.mean(0))
    for order in (2, 3):
        expected += np.linalg.norm(((a - a.mean(0)) ** order).mean(0) - ((b - b.mean(0)) ** order).mean(0))
    g = ModalityInvariantGenerator(
        GiaMicConfig(text_feature_size=4, hidden_size=8, num_attention_heads=2, invariance_loss="cmd", cmd_moments=3)
    )
    value = g.invariance_loss(
        {"text": torch.from_numpy(a), "audio": torch.from_numpy(b)}, presence(6, "text", "audio")
    )
    assert value.item() == pytest.approx(float(expected), rel=1e-5)


def test_a_pair_never_present_together_does_not_stop_the_others():
    z = {m: torch.randn(4, 8) for m in ("text", "audio", "vision")}
    present = {"text": torch.tensor([1.0, 1, 0, 0]), "audio": torch.tensor([0.0, 0, 1, 1]), "vision": torch.ones(4)}
    g = generator("similarity")
    value = g.invariance_loss(z, present)
    text_vision = g.invariance_loss({"text": z["text"][:2], "vision": z["vision"][:2]}, presence(2, "text", "vision"))
    audio_vision = g.invariance_loss(
        {"audio": z["audio"][2:], "vision": z["vision"][2:]}, presence(2, "audio", "vision")
    )
    assert value.item() == pytest.approx((text_vision.item() + audio_vision.item()) / 2, rel=1e-5)
