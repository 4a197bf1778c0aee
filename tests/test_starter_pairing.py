"""The starter's label-paired training data: inputs that disagree, per-batch modality sets, soft targets."""

import numpy as np
import pytest
import torch
from conftest import feature_config, feature_inputs, model_class
from datasets import Dataset

from gia_mic import MultimodalCollator
from gia_mic.starter import EMOTIONS, PairedByLabel


def parts(size: int = 70) -> dict:
    rng = np.random.default_rng(0)
    labels = np.arange(size) % len(EMOTIONS)
    out = {}
    for modality, width in (("text", 4), ("audio", 3), ("vision", 2)):
        # each item's features hold its own label, so the test can read which item was chosen
        rows = [np.full((2, width), label, dtype=np.float32) + rng.normal(0, 0.01, (2, width)) for label in labels]
        split = Dataset.from_dict({f"{modality}_features": [r.tolist() for r in rows]})
        out[modality] = (split, labels)
    return out


def test_agreeing_examples_have_one_label_and_every_input():
    data = PairedByLabel(parts(), size=14, seed=0)
    for index in range(14):
        example = data[index]
        assert example["label"] == index % 7
        for modality in ("text", "audio", "vision"):
            assert round(float(np.mean(example[f"{modality}_features"]))) == example["label"]


def test_disagreeing_examples_target_the_mean_of_the_present_inputs_labels():
    data = PairedByLabel(parts(), size=640, seed=1, mismatch=0.5, keep=0.65, group=32)
    disagreeing, subsets = 0, set()
    for index in range(640):
        example = data[index]
        present = [m for m in ("text", "audio", "vision") if f"{m}_features" in example]
        labels = [round(float(np.mean(example[f"{m}_features"]))) for m in present]
        expected = np.bincount(labels, minlength=7) / len(labels)
        np.testing.assert_allclose(example["label"], expected, atol=1e-9)
        disagreeing += len(set(labels)) > 1
        subsets.add(tuple(present))
        first = data[index - index % 32]  # the batch's first example carries the same inputs
        assert [m for m in ("text", "audio", "vision") if f"{m}_features" in first] == present
    assert 150 < disagreeing < 400 and len(subsets) >= 5, (disagreeing, subsets)


def test_soft_targets_train_every_architecture(architecture):
    config = feature_config(("text", "audio"), architecture=architecture, validate_inputs=True)
    model = model_class(architecture)(config).eval()
    soft = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    output = model(**feature_inputs(("text", "audio")), labels=soft)
    expected = -(soft * output.logits.log_softmax(-1)).sum(-1).mean()
    assert output.classification_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="must sum to 1"):
        model(**feature_inputs(("text", "audio")), labels=soft * 2)
    batch = MultimodalCollator()([{"text_features": [[0.0] * 12], "label": row.tolist()} for row in soft])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (3, 4)


def noisy_parts(seed: int, neutral_share: float) -> dict:
    """Features that carry their label through noise; a share of neutral items (label 0) as in conversation."""
    rng = np.random.default_rng(seed)
    weights = np.full(len(EMOTIONS), (1 - neutral_share) / (len(EMOTIONS) - 1))
    weights[0] = neutral_share
    labels = np.concatenate([np.arange(len(EMOTIONS)), rng.choice(len(EMOTIONS), size=133, p=weights)])
    out = {}
    for modality, width in (("text", 4), ("audio", 3), ("vision", 2)):
        rows = [label + rng.normal(0, 1.0, (2, width)).astype(np.float32) for label in labels]
        out[modality] = (Dataset.from_dict({f"{modality}_features": [r.tolist() for r in rows]}), labels)
    return out


def test_the_starter_is_calibrated_for_every_set_of_inputs(tmp_path):
    """
    A temperature for each of the 7 sets of inputs, fitted on that set's validation items (one input: its corpus's
    split; several: label-paired items) under those items' own label frequencies; the served answers then give
    `uncertain_below`. The text-alone temperature equals the fit by hand.
    """
    from transformers import set_seed

    from gia_mic.calibration import fit_temperature
    from gia_mic.starter import calibrate_paired, train_paired
    from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition

    set_seed(0)
    names = dict(enumerate(EMOTIONS))
    config = GiaMicConfig(
        text_feature_size=4,
        audio_feature_size=3,
        vision_feature_size=2,
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(EMOTIONS),
        id2label=names,
        target_prior={name: 0.4 if i == 0 else 0.1 for i, name in names.items()},
    )
    trainer = train_paired(
        GiaMicForEmotionRecognition(config), noisy_parts(0, 1 / 7), tmp_path, examples=224, epochs=1
    )
    validation = noisy_parts(1, 0.02)  # far from the target prior: the fit must use their own frequencies
    fitted = calibrate_paired(trainer, validation, seed=0, pairs=140)
    model = trainer.model
    sets = ["text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"]
    assert list(fitted) == sets and model.config.temperatures == {k: v["temperature"] for k, v in fitted.items()}
    assert 0 < model.config.uncertain_below < 1

    split, labels = validation["text"]
    temperatures, model.config.temperatures = model.config.temperatures, None
    with torch.no_grad():
        logits = model(**MultimodalCollator()([dict(row) for row in split])).logits.numpy()
    model.config.temperatures = temperatures
    raw = logits - model.logit_adjustment.numpy()
    own = np.log(np.bincount(labels, minlength=7) / len(labels)) - np.log(1 / 7)  # the split's own, not the target
    assert fitted["text"]["temperature"] == pytest.approx(fit_temperature(raw, labels, own), rel=1e-6)
