"""
Every architecture (GIA-MIC, MCIHN, MIAR), through the shared front end: both input paths, every modality subset,
masks, gates, losses, errors, transformers conventions. A property is written once and runs for each architecture.
"""

import copy

import pytest
import torch
from conftest import (
    FUSION,
    LOSS_WEIGHTS,
    MODALITY_SUBSETS,
    TINY_AUDIO,
    TINY_TEXT,
    TINY_VISION,
    TINY_WHISPER,
    base_model,
    feature_config,
    feature_inputs,
    model_class,
    raw_config,
    raw_inputs,
)
from transformers.modeling_layers import GradientCheckpointingLayer

from gia_mic.collator import MultimodalCollator
from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition, GiaMicModel, McihnConfig, split_modalities
from modeling_gia_mic.modeling_encoders import WhisperTower, encoder_family
from modeling_gia_mic.validation_multimodal import has_non_finite


def unused_trainable(model: torch.nn.Module, allowed: set[str]) -> list[str]:
    return [
        name
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and name not in allowed and (parameter.grad is None or not parameter.grad.any())
    ]


def missing_vectors(model) -> torch.nn.Parameter:
    """The learned vectors that stand in for absent modalities (their first rows: one per configured modality)."""
    (parameter,) = [p for name, p in model.named_parameters() if name.split(".")[-1].startswith("missing_")]
    return parameter


@pytest.mark.parametrize("mode", ["raw", "features"])
def test_forward_backward_reaches_every_parameter(architecture, mode):
    config = (raw_config if mode == "raw" else feature_config)(architecture=architecture)
    model = model_class(architecture)(config)
    inputs = raw_inputs() if mode == "raw" else feature_inputs()
    output = model(**inputs, labels=torch.tensor([0, 1, 3]))

    assert output.logits.shape == (3, 4)
    assert torch.isfinite(output.loss)
    terms = {name: output[name] for name in model.loss_names}
    assert all(torch.isfinite(value) and value.dim() == 0 for value in terms.values()), terms
    weights = {name: getattr(config, weight) for name, weight in LOSS_WEIGHTS[architecture].items()}
    expected = sum(weights.get(name, 1.0) * value for name, value in terms.items())
    assert output.loss.item() == pytest.approx(expected.item())
    output.loss.backward()
    # The "missing" vectors stand in for absent modalities only; everything else must learn from a full batch.
    missing = [name for name, p in model.named_parameters() if p is missing_vectors(model)]
    assert unused_trainable(model, set(missing)) == []


@pytest.mark.parametrize("subset", MODALITY_SUBSETS, ids="+".join)
@pytest.mark.parametrize("mode", ["raw", "features"])
def test_every_modality_subset(architecture, mode, subset):
    config = (raw_config if mode == "raw" else feature_config)(architecture=architecture)
    model = model_class(architecture)(config)
    inputs = raw_inputs(subset) if mode == "raw" else feature_inputs(subset)
    output = model(**inputs, labels=torch.tensor([2, 0, 1]))

    assert torch.isfinite(output.loss)
    assert output.modality_mask.tolist() == [[m in subset for m in config.modalities]] * 3
    output.loss.backward()
    missing = missing_vectors(model).grad
    for index, modality in enumerate(config.modalities):
        # An absent modality's slot is filled (and trained) by its learned "missing" vector.
        assert bool(missing[index].any()) == (modality not in subset)
    if len(subset) == 1 and architecture == "gia_mic":
        assert output.invariance_loss.item() == 0.0


def test_padding_changes_nothing(architecture):
    """The same utterances padded with extra tokens, audio samples and video frames give the same logits."""
    model = model_class(architecture)(raw_config(architecture=architecture)).eval()
    inputs = raw_inputs(batch_size=2)
    padded = {
        "input_ids": torch.cat([inputs["input_ids"], torch.zeros(2, 5, dtype=torch.long)], dim=1),
        "attention_mask": torch.cat([inputs["attention_mask"], torch.zeros(2, 5, dtype=torch.long)], dim=1),
        "input_values": torch.cat([inputs["input_values"], torch.randn(2, 640)], dim=1),
        "audio_attention_mask": torch.cat([inputs["audio_attention_mask"], torch.zeros(2, 640, dtype=torch.long)], 1),
        "pixel_values": torch.cat([inputs["pixel_values"], torch.randn(2, 3, 3, 16, 16)], dim=1),
        "frame_mask": torch.cat([inputs["frame_mask"], torch.zeros(2, 3, dtype=torch.long)], dim=1),
    }
    with torch.no_grad():
        reference, with_padding = model(**inputs), model(**padded)
    torch.testing.assert_close(with_padding.logits, reference.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_padding.gate_values, reference.gate_values, atol=1e-5, rtol=0)


@pytest.mark.parametrize("audio_downsample", [1, 3])
def test_padding_changes_nothing_in_feature_mode(architecture, audio_downsample):
    own = {"pooling": "attention"} if architecture == "gia_mic" else {}
    config = feature_config(architecture=architecture, audio_downsample=audio_downsample, **own)
    model = model_class(architecture)(config).eval()
    inputs = feature_inputs(batch_size=2)
    padded = {}
    for m in ("text", "audio", "vision"):
        features, mask = inputs[f"{m}_features"], inputs[f"{m}_feature_mask"]
        padded[f"{m}_features"] = torch.cat([features, 100 * torch.randn(2, 4, features.shape[-1])], dim=1)
        padded[f"{m}_feature_mask"] = torch.cat([mask, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(**padded).logits, model(**inputs).logits, atol=1e-5, rtol=0)


def test_audio_downsampling_averages_real_steps_only():
    from modeling_gia_mic.modeling_layers import downsample_sequence

    values = torch.arange(7.0).view(1, 7, 1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    pooled, pooled_mask = downsample_sequence(values, mask, 3)
    assert pooled.flatten().tolist() == pytest.approx([1.0, 3.5, 0.0]) and pooled_mask.tolist() == [[1, 1, 0]]
    model = GiaMicModel(feature_config(audio_downsample=4)).eval()
    audio, _ = model.get_modality_features(audio_features=torch.randn(2, 11, 5))["audio"]
    assert audio.shape == (2, 11, 5), "the features before the fusion's own downsampling"
    hidden = model(audio_features=torch.randn(2, 11, 5), output_hidden_states=True).hidden_states[0]
    assert hidden.shape[1] == 3, "the fusion network sees 11 steps averaged 4 at a time"


def test_gate_values_per_ordered_pair(architecture):
    config = feature_config(architecture=architecture)
    assert config.modality_pairs == (
        ("text", "audio"),
        ("text", "vision"),
        ("audio", "text"),
        ("audio", "vision"),
        ("vision", "text"),
        ("vision", "audio"),
    )
    model = model_class(architecture).base_model_class(config).eval()
    gates = model(**feature_inputs()).gate_values
    assert gates.shape == (3, 6)
    assert ((gates > 0) & (gates < 1)).all()

    text_audio = model(**feature_inputs(("text", "audio"))).gate_values
    present = [a in ("text", "audio") and b in ("text", "audio") for a, b in config.modality_pairs]
    assert ((text_audio > 0) == torch.tensor(present)).all(), "pairs with an absent modality carry no information"


@pytest.mark.parametrize(
    "overrides",
    [{"gate_type": "none"}, {"gate_type": "scalar"}, {"invariance_loss": "none"}, {"invariance_loss": "cmd"}],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_ablations_run(overrides):
    model = GiaMicForEmotionRecognition(feature_config(**overrides))
    output = model(**feature_inputs(), labels=torch.tensor([0, 1, 2]))
    output.loss.backward()
    assert torch.isfinite(output.loss)
    if overrides.get("gate_type") == "none":
        assert (output.gate_values == 1).all(), "without gates every interaction is fully open"
    if overrides.get("invariance_loss") == "none":
        assert output.invariance_loss.item() == 0.0
    else:
        assert output.invariance_loss.item() > 0.0


def eager_and_sdpa(architecture: str, **overrides):
    config = feature_config(architecture=architecture, **overrides)
    sdpa = model_class(architecture)(copy.deepcopy(config)).eval()
    eager = model_class(architecture)(copy.deepcopy(config)).eval()
    eager.load_state_dict(sdpa.state_dict())
    eager.set_attn_implementation("eager")
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    return eager, sdpa


def test_sdpa_and_eager_agree(architecture):
    eager, sdpa = eager_and_sdpa(architecture, initializer_range=0.3)  # peaked attention: a wrong scale would show
    inputs = feature_inputs()
    inputs["text_feature_mask"][1, 3:] = 0
    inputs["audio_feature_mask"][2, 5:] = 0
    with torch.no_grad():
        reference = sdpa(**inputs).logits
        torch.testing.assert_close(eager(**inputs).logits, reference, atol=1e-5, rtol=1e-5)
        out = eager(**inputs, output_attentions=True, output_hidden_states=True)
    torch.testing.assert_close(out.logits, reference, atol=1e-5, rtol=1e-5)  # recording the weights changes nothing
    stacked = torch.stack(out.hidden_states)  # code written for any transformers model works
    length = stacked.shape[2]
    assert len(out.attentions) == len(out.hidden_states) - 1
    if architecture == "mcihn":  # one self-attention over its tokens
        assert out.cross_attentions is None
    else:
        assert len(out.cross_attentions) == len(out.attentions)
    for weights in (*out.attentions, *(out.cross_attentions or ())):
        assert weights.shape == (3, 4, length, length)
        assert ((weights >= 0) & (weights <= 1 + 1e-6)).all()


def test_gia_mic_attentions_are_the_documented_block_matrix():
    config = feature_config(initializer_range=0.3)
    eager, _ = eager_and_sdpa("gia_mic", initializer_range=0.3)
    inputs = feature_inputs()
    inputs["text_feature_mask"][1, 3:] = 0
    with torch.no_grad():
        out = eager(**inputs, output_attentions=True, output_hidden_states=True)
    lengths = out.modality_lengths
    assert lengths.tolist() == [6, 11, 8] and out.attentions[0].shape == (3, 4, 25, 25)
    self_blocks, cross_blocks = (
        split_modalities(
            split_modalities(weights[0], lengths, config.modalities, dim=-2)["audio"],
            lengths,
            config.modalities,
            dim=-1,
        )
        for weights in (out.attentions, out.cross_attentions)
    )
    assert (self_blocks["text"] == 0).all() and (cross_blocks["audio"] == 0).all(), "each in its own tensor"
    for block in (self_blocks["audio"], cross_blocks["text"], cross_blocks["vision"]):  # a distribution over its keys
        torch.testing.assert_close(block.sum(-1), torch.ones_like(block.sum(-1)))
    weights = cross_blocks["text"]
    assert (weights[1, ..., 3:] == 0).all() and (weights[1, ..., :3] > 0).all(), "padded keys get no attention"
    assert len(out.attentions) == len(out.cross_attentions) == config.num_gia_layers
    assert len(out.hidden_states) == config.num_gia_layers + 1


def test_hidden_states_and_attentions_are_on_the_graph(architecture):
    model = model_class(architecture)(feature_config(architecture=architecture)).train()
    model.set_attn_implementation("eager")
    out = model(**feature_inputs(("text", "vision")), output_hidden_states=True, output_attentions=True)
    attentions = (*out.attentions, *(out.cross_attentions or ()))
    for recorded in (out.hidden_states[0], out.hidden_states[-1], *attentions):
        recorded.retain_grad()
    out.logits.sum().backward()
    assert out.hidden_states[0].grad is not None and out.hidden_states[-1].grad.abs().sum() > 0
    for weights in attentions:
        assert weights.grad is not None and weights.grad.abs().sum() > 0, "the recorded matrix is the one used"


def test_gia_mic_hidden_states_join_the_modalities():
    model = GiaMicForEmotionRecognition(feature_config(**{"hidden_dropout": 0.0})).eval()
    model.set_attn_implementation("eager")
    inputs = feature_inputs(("text", "vision"))
    out = model(**inputs, output_hidden_states=True, output_attentions=True)
    stacked = torch.stack(out.hidden_states)  # code written for any transformers model works
    assert stacked.shape == (model.config.num_gia_layers + 1, 3, 6 + 8, 32)
    assert out.modality_lengths.tolist() == [6, 0, 8]
    last = split_modalities(out.hidden_states[-1], out.modality_lengths, model.config.modalities)
    assert list(last) == ["text", "vision"]
    pooled = (last["vision"] * inputs["vision_feature_mask"][..., None]).sum(1) / inputs["vision_feature_mask"].sum(
        1, keepdim=True
    )
    torch.testing.assert_close(out.modality_embeddings[:, 2], pooled, atol=1e-6, rtol=0)


def test_output_flags_follow_transformers_conventions(architecture):
    model = model_class(architecture)(feature_config(architecture=architecture, output_hidden_states=True)).eval()
    inputs = feature_inputs()
    assert len(model(**inputs).hidden_states) == 3, "the config's default (two fusion layers)"
    assert model(**inputs, output_hidden_states=False).hidden_states is None, "the call overrides the config"
    every = model(**inputs).hidden_states
    chosen = model(**inputs, output_hidden_states=[0, -1]).hidden_states  # transformers' layer-list form
    assert len(chosen) == 3 and chosen[1] is None, "the others are None: each entry keeps its layer's index"
    assert torch.equal(chosen[0], every[0]) and torch.equal(chosen[2], every[2])
    assert torch.equal(model(**inputs, output_hidden_states=1).hidden_states[1], every[1])
    with pytest.raises(ValueError, match="takes True, False, a layer index or a list of them"):
        model(**inputs, output_hidden_states="last")


def test_output_attentions_with_sdpa_loaded_gives_the_eager_weights_and_the_same_logits(architecture):
    """transformers' models compute the weights eagerly for an `output_attentions=True` call, whatever is loaded."""
    config = feature_config(architecture=architecture)
    sdpa = model_class(architecture)(config).eval()
    assert sdpa.config._attn_implementation == "sdpa"
    eager = model_class(architecture)(config).eval()
    eager.load_state_dict(sdpa.state_dict())
    eager.set_attn_implementation("eager")
    inputs = feature_inputs()
    with torch.no_grad():
        plain = sdpa(**inputs)
        recorded = sdpa(**inputs, output_attentions=True)
        reference = eager(**inputs, output_attentions=True)
    torch.testing.assert_close(recorded.logits, plain.logits, atol=1e-5, rtol=0)
    assert len(recorded.attentions) == len(reference.attentions) > 0
    for ours, theirs in zip(recorded.attentions, reference.attentions):
        torch.testing.assert_close(ours, theirs)
    with pytest.raises(ValueError, match="`output_attentions` takes True or False"):
        sdpa(**inputs, output_attentions=[0])


def test_the_module_visitor_works(architecture):
    """`nn.Module.apply` (torch's recursive visitor, used by init helpers) reaches every module."""
    model = model_class(architecture)(feature_config(architecture=architecture))
    visited = []
    assert model.apply(visited.append) is model
    assert len(visited) == len(list(model.modules()))


def test_bfloat16_inference_stays_in_bfloat16(architecture):
    model = model_class(architecture)(raw_config(architecture=architecture)).eval()
    reference = model(**raw_inputs()).logits
    model.to(torch.bfloat16)
    inputs = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in raw_inputs().items()}
    with torch.no_grad():
        output = model(**inputs)
    assert output.logits.dtype == torch.bfloat16 and output.gate_values.dtype == torch.bfloat16
    torch.testing.assert_close(output.logits.float(), reference, atol=0.1, rtol=0.1)


def test_regression_with_l1_loss(architecture):
    model = model_class(architecture)(feature_config(architecture=architecture, num_labels=1, regression_loss="l1"))
    assert model.config.problem_type == "regression"
    labels = torch.tensor([-2.4, 0.0, 1.6])
    output = model(**feature_inputs(), labels=labels)
    assert output.logits.shape == (3, 1)
    expected = torch.nn.functional.l1_loss(output.logits.squeeze(-1), labels)
    assert output.classification_loss.item() == pytest.approx(expected.item())
    output.loss.backward()


def test_class_weights_and_label_smoothing_enter_the_loss(architecture):
    inputs, labels = feature_inputs(), torch.tensor([0, 1, 1])
    plain = model_class(architecture)(feature_config(architecture=architecture)).eval()
    weighted = model_class(architecture)(
        feature_config(architecture=architecture, class_weights=[5.0, 1.0, 1.0, 1.0], label_smoothing=0.1)
    )
    weighted.load_state_dict(plain.state_dict())
    weighted.eval()
    logits = plain(**inputs).logits
    expected = torch.nn.functional.cross_entropy(
        logits, labels, weight=torch.tensor([5.0, 1.0, 1.0, 1.0]), label_smoothing=0.1
    )
    assert weighted(**inputs, labels=labels).classification_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_modality_dropout_drops_whole_modalities_per_sample(architecture):
    model = model_class(architecture)(feature_config(architecture=architecture, modality_dropout=0.6)).train()
    output = model(**feature_inputs(batch_size=64), labels=torch.zeros(64, dtype=torch.long))
    kept = output.modality_mask
    assert (kept.sum(1) >= 1).all(), "every sample keeps at least one modality"
    assert (~kept).any(), "with p=0.6 some modalities are dropped"
    assert torch.isfinite(output.loss)
    assert (model.eval()(**feature_inputs(batch_size=4)).modality_mask).all(), "nothing is dropped at inference"


def test_encoders_train_unless_frozen_and_frozen_ones_stay_in_eval_mode(architecture):
    encoders = base_model(model_class(architecture)(raw_config(architecture=architecture))).encoders
    assert all(p.requires_grad for p in encoders.parameters()), "nothing configured frozen: every encoder trains"
    model = model_class(architecture)(raw_config(architecture=architecture, freeze_text_encoder=True))
    model.train()
    encoders = base_model(model).encoders
    assert not encoders["text"].training and encoders["audio"].training
    model(**raw_inputs(), labels=torch.tensor([0, 1, 2])).loss.backward()
    assert all(p.grad is None for p in encoders["text"].parameters())
    assert all(p.grad is not None for p in encoders["audio"].parameters() if p.requires_grad)
    model.freeze_encoders()
    assert not any(p.requires_grad for p in encoders.parameters())
    with pytest.raises(ValueError, match="No text encoder"):
        model_class(architecture)(feature_config(architecture=architecture)).freeze_encoders("text")


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert"])
def test_a_group_norm_speech_tower_matches_its_own_forward_on_unpadded_clips(model_type):
    """Its group norm counts each clip's real steps only; on clips without padding that is the tower's own norm."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(**{**TINY_AUDIO, "model_type": model_type, "feat_extract_norm": "group"})
    config.do_stable_layer_norm = False
    family = encoder_family(config, "audio")
    encoder = family.build(config).eval()
    waveforms = torch.randn(2, 1600)
    with torch.no_grad():
        ours, mask = family.encode(encoder, {"input_values": waveforms})
        torch.testing.assert_close(ours, encoder(waveforms).last_hidden_state, atol=1e-5, rtol=1e-5)
    assert mask.shape == ours.shape[:2] and bool(mask.all())


def test_whisper_encoder_over_real_length_matches_the_30_second_encoder():
    """The sliced Whisper path equals WhisperEncoder itself on a full-length input, and takes short clips too."""
    config = GiaMicConfig(audio_config=TINY_WHISPER, hidden_size=32, num_attention_heads=4, num_labels=3)
    model = GiaMicForEmotionRecognition(config).eval()
    encoder = model.gia_mic.encoders["audio"]
    assert type(encoder).__name__ == "WhisperEncoder"
    full = torch.randn(2, 16, 60)  # max_source_positions (30) * 2
    with torch.no_grad():
        reference = encoder(full).last_hidden_state
        sliced, mask = WhisperTower().encode(encoder, {"input_features": full})
        torch.testing.assert_close(sliced, reference, atol=1e-5, rtol=1e-5)
        assert mask.shape == (2, 30)
        short = model(input_features=torch.randn(2, 16, 18), audio_attention_mask=torch.ones(2, 18))
    assert short.logits.shape == (2, 3) and torch.isfinite(short.logits).all()
    with pytest.raises(ValueError, match="Whisper: pass `input_features`, not `input_values`"):
        model(input_values=torch.randn(2, 1600))
    with pytest.raises(ValueError, match="at most 60"):
        model(input_features=torch.randn(1, 16, 62))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "No modality was given"),
        ({"text_features": torch.randn(2, 4, 12), "audio_features": torch.randn(3, 4, 5)}, "same batch size"),
        ({"text_features": torch.randn(2, 4, 13)}, r"shape \(batch, length, 12\)"),
        ({"input_ids": torch.ones(2, 4, dtype=torch.long)}, "takes text as precomputed features"),
    ],
    ids=["no-modality", "batch-mismatch", "feature-size", "raw-to-feature-model"],
)
def test_bad_feature_inputs_raise_clear_errors(architecture, inputs, message):
    model = model_class(architecture)(feature_config(("text", "audio"), architecture=architecture))
    with pytest.raises(ValueError, match=message):
        model(**inputs)


BAD_VALUES = {
    "all-padding": (
        {"text_features": torch.randn(2, 4, 12), "text_feature_mask": torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])},
        r"`text_feature_mask` of sample\(s\) \[1\] is all padding",
    ),
    "nan": ({"audio_features": torch.full((1, 3, 5), float("nan"))}, "`audio_features` contains NaN or infinite"),
    "mask-values": (
        {"text_features": torch.randn(2, 4, 12), "text_feature_mask": torch.tensor([[1, 2, 1, 0], [1, 1, 1, 1]])},
        r"`text_feature_mask` must hold only 0 \(padding\) and 1 \(content\); it also holds \[2\]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_input_values_are_clear_errors_from_the_collator_or_a_validating_model(architecture, case):
    """Checks that read values stall a GPU: the model runs them only when asked; the collator always does."""
    inputs, message = BAD_VALUES[case]
    model_class(architecture)(feature_config(("text", "audio"), architecture=architecture))(**inputs)  # not read
    validating = model_class(architecture)(
        feature_config(("text", "audio"), architecture=architecture, validate_inputs=True)
    )
    with pytest.raises(ValueError, match=message):
        validating(**inputs)
    samples = [
        {name: value[index] for name, value in inputs.items()} for index in range(len(next(iter(inputs.values()))))
    ]
    with pytest.raises(ValueError, match=message):
        MultimodalCollator()(samples)


def test_non_finite_check_sees_single_and_cancelling_values_but_not_an_overflowing_sum():
    values = torch.randn(4, 50, 8)
    assert not has_non_finite(values)
    for bad in (float("nan"), float("inf"), float("-inf")):
        corrupted = values.clone()
        corrupted[2, 17, 3] = bad
        assert has_non_finite(corrupted)
    cancelling = values.clone()
    cancelling[0, 0, 0], cancelling[1, 0, 0] = float("inf"), float("-inf")  # sums to NaN, still caught
    assert has_non_finite(cancelling)
    assert not has_non_finite(torch.full((4, 8), 3e38))  # finite values whose float32 sum overflows


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"input_values": torch.randn(2, 0)}, r"audio input is empty \(0 samples\)"),
        ({"pixel_values": torch.randn(2, 3, 16, 16)}, r"\(batch, frames, channels, height, width\)"),
        ({"text_features": torch.randn(2, 3, 12)}, r"\(batch, length, 32\), the output width of this model's text"),
    ],
    ids=["empty-waveform", "pixel-rank", "features-to-raw-model"],
)
def test_bad_raw_inputs_raise_clear_errors(architecture, inputs, message):
    model = model_class(architecture)(raw_config(architecture=architecture))
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_encoder_outputs_given_back_skip_the_encoders_and_give_the_same_logits(architecture):
    """`get_modality_features` once, then several fusions of subsets (the demo's explanation) without re-encoding."""
    model = model_class(architecture)(raw_config(architecture=architecture, audio_downsample=3)).eval()
    inputs = raw_inputs()
    inputs["attention_mask"][1, 6:] = 0
    with torch.no_grad():
        encoded = base_model(model).get_modality_features(**inputs)
        cached = {
            name: value
            for m, (f, mask) in encoded.items()
            for name, value in ((f"{m}_features", f), (f"{m}_feature_mask", mask))
        }
        # (equal only if the given-back audio is downsampled once, as the raw input is)
        torch.testing.assert_close(model(**cached).logits, model(**inputs).logits, atol=1e-5, rtol=0)
        text_only = model(text_features=cached["text_features"], text_feature_mask=cached["text_feature_mask"])
        torch.testing.assert_close(
            text_only.logits, model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        )
    with pytest.raises(ValueError, match="either raw .* or as `text_features`, not both"):
        model(input_ids=inputs["input_ids"], text_features=cached["text_features"])


def test_inputs_for_an_unconfigured_modality_are_refused(architecture):
    model = model_class(architecture)(feature_config(("text",), architecture=architecture))
    with pytest.raises(ValueError, match="no vision modality"):
        model(text_features=torch.randn(1, 2, 12), vision_features=torch.randn(1, 2, 7))


def test_bad_configs_raise_clear_errors(architecture):
    head = model_class(architecture)
    with pytest.raises(ValueError, match="configures no modality"):
        head.base_model_class(head.config_class())
    with pytest.raises(ValueError, match="divisible"):
        head.config_class(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="class_weights"):
        head.config_class(num_labels=4, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="`num_labels` must be at least 1"):
        head.config_class(text_feature_size=4, num_labels=0)
    with pytest.raises(ValueError, match="`modality_dropout` must lie in"):
        head.config_class(text_feature_size=4, modality_dropout=1.0)


def test_bad_architecture_fields_raise_clear_errors():
    with pytest.raises(ValueError, match="gate_type"):
        GiaMicConfig(gate_type="softmax")
    with pytest.raises(ValueError, match="latent_size"):
        McihnConfig(latent_size=30, num_attention_heads=4)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 4]), r"class indices in \[0, 4\) \(or -100 to ignore\); got \[4\]"),
        (torch.tensor([-1, 2]), r"got \[-1\]"),
        (torch.tensor([[0, 1], [1, 2]]), r"shape \(2,\), one per sample; got \(2, 2\)"),
        (torch.tensor([0.0, 1.0]), "integer class indices; got dtype torch.float32"),
        (torch.tensor([-100, -100]), "Every label of the batch is -100"),
    ],
    ids=["above-range", "negative", "shape", "float-dtype", "all-ignored"],
)
def test_bad_classification_labels_raise_clear_errors(architecture, labels, message):
    model = model_class(architecture)(feature_config(("text",), architecture=architecture, validate_inputs=True))
    with pytest.raises(ValueError, match=message):
        model(text_features=torch.randn(2, 3, 12), labels=labels)
    model(text_features=torch.randn(2, 3, 12), labels=torch.tensor([-100, 3])).loss.backward()  # one kept: fine


def test_a_nan_regression_label_is_an_error(architecture):
    config = feature_config(("text",), architecture=architecture, num_labels=1, validate_inputs=True)
    model = model_class(architecture)(config)
    with pytest.raises(ValueError, match="`labels` contain NaN"):
        model(text_features=torch.randn(2, 3, 12), labels=torch.tensor([0.5, float("nan")]))


@pytest.mark.parametrize("name", ["text_feature_mask", "audio_feature_mask"])
def test_masks_must_be_zero_or_one(architecture, name):
    config = feature_config(("text", "audio"), architecture=architecture, validate_inputs=True)
    model = model_class(architecture)(config)
    inputs = feature_inputs(("text", "audio"), batch_size=2)
    inputs[name] = inputs[name] * 2
    with pytest.raises(
        ValueError, match=rf"`{name}` must hold only 0 \(padding\) and 1 \(content\); it also holds \[2\]"
    ):
        model(**inputs)
    inputs[name] = inputs[name].bool()
    assert torch.isfinite(model(**inputs).logits).all()


def test_class_weights_weigh_the_loss_of_a_loaded_model(architecture, tmp_path):
    """They live in a buffer made from the config: a loaded model must rebuild it (no checkpoint holds it)."""
    weights = [1.0, 2.0, 3.0, 4.0]
    model_class(architecture)(
        feature_config(("text",), architecture=architecture, class_weights=weights)
    ).save_pretrained(tmp_path)
    loaded = model_class(architecture).from_pretrained(tmp_path).eval()
    features, labels = torch.randn(3, 4, 12), torch.tensor([0, 3, 1])
    output = loaded(text_features=features, labels=labels)
    expected = torch.nn.functional.cross_entropy(output.logits, labels, weight=torch.tensor(weights))
    assert output.classification_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mse_regression_and_column_labels(architecture):
    config = feature_config(("text",), architecture=architecture, num_labels=1, regression_loss="mse")
    model = model_class(architecture)(config).eval()
    features, targets = torch.randn(3, 4, 12), torch.tensor([0.5, -1.0, 2.0])
    output = model(text_features=features, labels=targets[:, None])  # (batch, 1) labels are one per sample too
    expected = ((output.logits.squeeze(-1) - targets) ** 2).mean()
    assert output.classification_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_modality_dropout_drops_one_of_two_modalities_too(architecture):
    config = feature_config(("text", "audio"), architecture=architecture, modality_dropout=0.5)
    model = model_class(architecture)(config).train()
    kept = model(**feature_inputs(("text", "audio"), batch_size=32)).modality_mask
    assert (~kept).any() and (kept.sum(1) >= 1).all()


# The checkpointed layer of each architecture's fusion stack.
CHECKPOINTED_LAYERS = {
    "gia_mic": "GatedInteractiveAttentionLayer",
    "mcihn": "MultimodalTransformerLayer",
    "miar": "ModalityInteraction",
}


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize("mode", ["raw", "features"])
def test_gradient_checkpointing_gives_the_same_gradients(architecture, mode, reentrant):
    config = (raw_config if mode == "raw" else feature_config)(
        architecture=architecture, hidden_dropout=0.0, attention_dropout=0.0, classifier_dropout=0.0
    )
    if architecture == "mcihn":
        config.adversarial_weight = 0.0  # its prior samples are drawn anew at each forward, recomputation included
    plain = model_class(architecture)(copy.deepcopy(config)).train()
    checkpointed = model_class(architecture)(copy.deepcopy(config)).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable({"use_reentrant": reentrant})  # transformers 5.25's API
    assert checkpointed.is_activation_checkpointing
    layers = [m for m in checkpointed.modules() if type(m).__name__ == CHECKPOINTED_LAYERS[architecture]]
    assert layers and all(isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing for m in layers)
    inputs = raw_inputs() if mode == "raw" else feature_inputs()
    labels = torch.tensor([0, 1, 2])
    calls = {"plain": [], "checkpointed": []}
    for name, model in (("plain", plain), ("checkpointed", checkpointed)):
        layer = next(m for m in model.modules() if type(m).__name__ == CHECKPOINTED_LAYERS[architecture])
        first = next(m for m in layer.modules() if isinstance(m, torch.nn.Linear))  # recomputation may stop early
        first.register_forward_pre_hook(lambda *_, seen=calls[name]: seen.append(1))
    for model in (plain, checkpointed):  # the encoders' own dropout draws the same masks in both
        torch.manual_seed(0)
        model(**inputs, labels=labels).loss.backward()
    assert calls["plain"] and len(calls["checkpointed"]) == 2 * len(calls["plain"]), (
        "the layer ran again in the backward pass instead of storing its activations"
    )
    compared = 0
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=name)
            compared += 1
    assert compared > 50
    checkpointed.activation_checkpointing_disable()
    assert not checkpointed.is_activation_checkpointing and not any(m.gradient_checkpointing for m in layers)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: raw_config(), "input_ids"),
        (lambda: raw_config(("audio", "vision")), "input_values"),
        (lambda: raw_config(("vision",)), "pixel_values"),
        (lambda: feature_config(("audio", "vision")), "audio_features"),
    ],
)
def test_main_input_name_is_an_input_the_model_takes(make, expected):
    assert GiaMicForEmotionRecognition(make()).main_input_name == expected


def test_offloaded_device_map_keeps_blocks_whole_and_gives_the_same_logits(architecture, tmp_path):
    model = model_class(architecture)(raw_config(architecture=architecture)).eval()
    assert {CHECKPOINTED_LAYERS[architecture], "BertLayer", "ViTLayer"} <= set(model._no_split_modules)
    model.save_pretrained(tmp_path / "model")
    inputs = raw_inputs()
    with torch.no_grad():
        reference = model(**inputs).logits
    offloaded = (
        model_class(architecture)
        .from_pretrained(
            tmp_path / "model",
            device_map="auto",
            max_memory={"cpu": model.get_memory_footprint() // 2},
            offload_folder=str(tmp_path / "disk"),
        )
        .eval()
    )
    placement = offloaded.hf_device_map
    assert set(placement.values()) == {"cpu", "disk"}, placement
    assert not any(".layers.0." in name or ".layer.0." in name for name in placement), "a block was split"
    with torch.no_grad():
        torch.testing.assert_close(offloaded(**inputs).logits, reference, atol=1e-6, rtol=0)


TOWERS_FOR_INIT = {
    "bert": ("text", TINY_TEXT),
    "wav2vec2": ("audio", TINY_AUDIO),
    "hubert": ("audio", {**TINY_AUDIO, "model_type": "hubert"}),
    "vit": ("vision", TINY_VISION),
    "whisper": ("audio", TINY_WHISPER),
}


@pytest.mark.parametrize("tower", list(TOWERS_FOR_INIT))
def test_encoder_weights_missing_from_a_checkpoint_get_their_own_initialisation(tower, tmp_path):
    """Each missing weight is drawn as the encoder itself draws it (wav2vec2's projection: uniform, not N(0, 0.02))."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig

    modality, tower_config = TOWERS_FOR_INIT[tower]
    config = GiaMicConfig(**{f"{modality}_config": dict(tower_config)}, **FUSION, num_labels=3)
    GiaMicForEmotionRecognition(config).save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    kept = {name: value for name, value in weights.items() if ".encoders." not in name}
    save_file(kept, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded = GiaMicForEmotionRecognition.from_pretrained(tmp_path).gia_mic.encoders[modality].state_dict()
    tower = AutoConfig.for_model(**tower_config)
    reference = encoder_family(tower, modality).build(tower).state_dict()
    assert loaded.keys() == reference.keys()
    for name, expected in reference.items():
        value = loaded[name]
        assert torch.isfinite(value).all(), f"{name} is uninitialised memory"
        if not expected.is_floating_point() or expected.numel() < 64 or expected.std() == 0:
            if expected.is_floating_point() and expected.std() == 0:
                torch.testing.assert_close(value, expected, msg=name)  # zeros and ones exactly
            continue
        ratio = (value.float().std() / expected.float().std()).item()
        assert 0.6 < ratio < 1.6, f"{name}: std {value.std():.4f}, its own initialisation gives {expected.std():.4f}"
