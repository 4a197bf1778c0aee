"""
`transformers.Trainer` fine-tunes each architecture with the multimodal collator and logs every term of its loss; the
collator pads correctly.
"""

import numpy as np
import pytest
import torch
from conftest import LOSS_WEIGHTS, feature_config, model_class
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from gia_mic import MultimodalCollator
from gia_mic.reporting import plot_training_curves
from gia_mic.training import EmotionTrainer
from modeling_gia_mic import GiaMicForEmotionRecognition


def learnable_dataset(size: int, seed: int) -> Dataset:
    """Emotion c is visible as a bump on channel c of the text features; audio carries a weaker copy of it."""
    rng = np.random.default_rng(seed)
    rows = {"text_features": [], "audio_features": [], "label": []}
    for _ in range(size):
        label = int(rng.integers(4))
        text = rng.normal(size=(int(rng.integers(3, 9)), 12)).astype(np.float32)
        text[:, label] += 1.5
        audio = rng.normal(size=(int(rng.integers(5, 15)), 5)).astype(np.float32)
        audio[:, label] += 0.5
        rows["text_features"].append(text)
        rows["audio_features"].append(audio)
        rows["label"].append(label)
    return Dataset.from_dict(rows)


def test_trainer_fine_tunes_and_the_loss_goes_down(architecture, tmp_path):
    model = model_class(architecture)(feature_config(("text", "audio"), architecture=architecture, hidden_dropout=0.0))
    train, test = learnable_dataset(256, seed=0), learnable_dataset(64, seed=1)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=3e-3,
        num_train_epochs=3,
        remove_unused_columns=False,
        report_to="none",
        save_strategy="no",
        logging_steps=8,
        use_cpu=True,
        seed=0,
        data_seed=0,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train, eval_dataset=test, data_collator=MultimodalCollator()
    )
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.8 * before, (before, after)  # auxiliary terms (an adversarial game) fall less than the task's

    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert logged[-1] < logged[0]
    predictions = trainer.predict(test)
    accuracy = (predictions.predictions[0].argmax(-1) == np.array(test["label"])).mean()
    assert accuracy > 0.6, accuracy  # chance: 0.25


def test_collator_pads_every_input_and_builds_masks():
    samples = [
        {"input_ids": [5, 6, 7], "input_values": np.ones(4), "pixel_values": np.ones((1, 3, 2, 2)), "label": 2},
        {"input_ids": [8], "input_values": np.ones(6), "pixel_values": np.ones((3, 3, 2, 2)), "label": 0},
    ]
    batch = MultimodalCollator(pad_token_id=1)(samples)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 1, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["audio_attention_mask"].sum(1).tolist() == [4, 6]
    assert batch["pixel_values"].shape == (2, 3, 3, 2, 2) and batch["frame_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert batch["labels"].tolist() == [2, 0] and batch["labels"].dtype == torch.long

    whisper = MultimodalCollator(regression=True)(
        [{"input_features": np.ones((4, 10)), "label": 1.5}, {"input_features": np.ones((4, 6)), "label": -2.0}]
    )
    assert whisper["input_features"].shape == (2, 4, 10) and whisper["audio_attention_mask"].sum(1).tolist() == [10, 6]
    assert whisper["labels"].dtype == torch.float32


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], "empty list"),
        ([{"text_features": np.ones((2, 3)), "transcript": "hi"}], r"not GIA-MIC inputs: \['transcript'\]"),
        ([{"text_features": np.ones((2, 3))}, {"audio_features": np.ones((2, 3))}], "Sample 1 has different inputs"),
        ([{"text_features": np.ones((2, 3))}, {"text_features": np.ones((2, 4))}], "sample 1 has shape"),
    ],
    ids=["empty", "unknown-key", "mixed-modalities", "feature-size"],
)
def test_collator_rejects_what_it_cannot_batch(samples, message):
    with pytest.raises(ValueError, match=message):
        MultimodalCollator()(samples)
    assert MultimodalCollator(ignore_keys=("transcript",))([{"text_features": np.ones((2, 3)), "transcript": "hi"}])[
        "text_features"
    ].shape == (1, 2, 3)


def test_trainer_with_gradient_checkpointing_and_inputs_for_metrics(tmp_path):
    """`main_input_name` names an input the model takes, so Trainer can hand the inputs to `compute_metrics`."""
    model = GiaMicForEmotionRecognition(feature_config(("text", "audio")))
    assert type(model).main_input_name == "input_ids", "the class: `forward`'s first argument"
    assert model.main_input_name == "text_features", "the instance: the first input it takes, which Trainer reads"
    seen = []

    def compute_metrics(prediction):
        seen.append(prediction.inputs.shape)
        return {"rows": float(len(prediction.label_ids))}

    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_steps=2,
        gradient_checkpointing=True,
        include_for_metrics=["inputs"],
        remove_unused_columns=False,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
    )
    data = learnable_dataset(24, seed=2)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        data_collator=MultimodalCollator(),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    assert all(layer.gradient_checkpointing for layer in model.gia_mic.gated_interactive_attention.layers)
    assert trainer.evaluate()["eval_rows"] == 24.0
    assert seen and seen[0][0] == 24 and seen[0][-1] == 12, "the padded text features of every row"


def test_every_term_of_the_loss_is_logged_and_plotted(architecture, tmp_path):
    model = model_class(architecture)(feature_config(("text", "audio"), architecture=architecture))
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        max_steps=4,
        logging_steps=2,
        remove_unused_columns=False,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
    )
    trainer = EmotionTrainer(
        model=model, args=args, train_dataset=learnable_dataset(32, seed=3), data_collator=MultimodalCollator()
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2
    for entry in logged:
        assert set(model.loss_names) <= set(entry), entry
        weights = {name: getattr(model.config, weight) for name, weight in LOSS_WEIGHTS[architecture].items()}
        # The logged terms are the means of the same steps as the logged loss (rounding aside).
        total = sum(weights.get(name, 1.0) * entry[name] for name in model.loss_names)
        assert total == pytest.approx(entry["loss"], abs=2e-3)
    figure = plot_training_curves(trainer.state.log_history, tmp_path / "curves.png", architecture)
    assert figure.stat().st_size > 10_000


def test_each_architecture_gets_its_own_model_card(architecture, tmp_path):
    from gia_mic.reporting import write_model_card

    model = model_class(architecture)(feature_config(("text", "audio"), architecture=architecture))
    results = {"test": {"wa": 0.5, "ua": 0.4}}
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    card = write_model_card(tmp_path, model.config, "data/iemocap", results, "test", args).read_text()
    paper = {"gia_mic": "arXiv 2506.00865", "mcihn": "arXiv 2510.24827", "miar": "arXiv 2601.02414"}[architecture]
    assert (
        paper in card
        and f"- {architecture.replace('_', '-')}" in card
        and "| UA (unweighted accuracy) | 0.4000 |" in card
    )
