"""
Behaviours pinned by their definitions, on inputs where a planted bug would show: uneven padding across the samples of
one batch and a dropped modality's isolation (every architecture), GIA-MIC's gate's two inputs, its invariance loss by
hand and its forward pass by its equations (issue 15).
"""

import numpy as np
import pytest
import torch
from conftest import FEATURE_SIZES, TINY_AUDIO, TINY_TEXT, TINY_WHISPER, feature_config, model_class, raw_config
from transformers import AutoConfig

from gia_mic import MultimodalCollator
from modeling_gia_mic import GiaMicConfig, GiaMicForEmotionRecognition, ModalityInvariantGenerator
from modeling_gia_mic.modeling_gia_mic import GiaMicInteractionGate


NO_DROPOUT = {"hidden_dropout": 0.0, "attention_dropout": 0.0, "classifier_dropout": 0.0}


def raw_sample(text: int, audio: int, frames: int, whisper: bool = False) -> dict[str, torch.Tensor]:
    """Whisper: an odd number of log-mel frames (its strided convolution then reads one frame past the clip's end)."""
    audio_input = {"input_features": torch.randn(TINY_WHISPER["num_mel_bins"], audio // 50 - 1)} if whisper else {}
    return {
        "input_ids": torch.randint(1, TINY_TEXT["vocab_size"], (text,)),
        **(audio_input or {"input_values": torch.randn(audio)}),
        "pixel_values": torch.randn(frames, 3, 16, 16),
    }


def feature_sample(text: int, audio: int, frames: int) -> dict[str, torch.Tensor]:
    lengths = {"text": text, "audio": audio, "vision": frames}
    return {f"{m}_features": torch.randn(n, FEATURE_SIZES[f"{m}_feature_size"]) for m, n in lengths.items()}


# Every sample has its own length in every modality, and the longest differs per modality.
UNEVEN = [(9, 1200, 2), (3, 2000, 5), (6, 640, 3)]


# wav2vec2-base / HuBERT-base style: a group-norm convolutional feature encoder that takes no attention mask.
GROUP_NORM_AUDIO = {**TINY_AUDIO, "feat_extract_norm": "group", "do_stable_layer_norm": False}


# Each architecture, and GIA-MIC with each pooling.
VARIANTS = [("gia_mic", {"pooling": "mean"}), ("gia_mic", {"pooling": "attention"}), ("mcihn", {}), ("miar", {})]


@pytest.mark.parametrize("mode", ["raw", "raw-group-norm", "raw-whisper", "features"])
@pytest.mark.parametrize(("architecture", "own"), VARIANTS, ids=lambda v: v if isinstance(v, str) else "")
def test_each_sample_of_an_unevenly_padded_batch_equals_that_sample_alone(mode, architecture, own):
    if mode == "features":
        config = feature_config(architecture=architecture, audio_downsample=2, **own)
    else:
        config = raw_config(architecture=architecture, **own)
        if mode == "raw-group-norm":
            config.audio_config = type(config.audio_config)(**GROUP_NORM_AUDIO)
        if mode == "raw-whisper":  # its convolutions must not reach into a shorter clip's padding
            config.audio_config = AutoConfig.for_model(**TINY_WHISPER)
    model = model_class(architecture)(config).eval()
    samples = [
        feature_sample(t, a // 100, f) if mode == "features" else raw_sample(t, a, f, mode == "raw-whisper")
        for t, a, f in UNEVEN
    ]
    collate = MultimodalCollator()
    with torch.no_grad():
        together = model(**collate(samples))
        for index, sample in enumerate(samples):
            alone = model(**collate([sample]))
            torch.testing.assert_close(together.logits[index], alone.logits[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(together.gate_values[index], alone.gate_values[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(  # larger than the logits of a fresh head: a leak cannot hide in their scale
                together.modality_embeddings[index], alone.modality_embeddings[0], atol=1e-5, rtol=0
            )


@pytest.mark.parametrize("gate_type", ["elementwise", "scalar"])
def test_the_gate_depends_on_both_the_modality_itself_and_the_context(gate_type):
    gate = GiaMicInteractionGate(
        GiaMicConfig(text_feature_size=4, hidden_size=8, num_attention_heads=2, gate_type=gate_type)
    )
    specific, context = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    reference = gate(specific, context)
    assert reference.shape == (2, 5, 8 if gate_type == "elementwise" else 1)
    assert not torch.allclose(gate(specific + torch.randn(2, 5, 8), context), reference), "S_a must enter the gate"
    assert not torch.allclose(gate(specific, context + torch.randn(2, 5, 8)), reference), "C must enter the gate"
    with torch.no_grad():
        gate.dense.weight.zero_()
        gate.dense.bias.fill_(2.0)
    torch.testing.assert_close(gate(specific, context), torch.full_like(reference, torch.sigmoid(torch.tensor(2.0))))


def test_a_dropped_modality_changes_nothing_in_the_others(architecture):
    """In training, a sample whose modality `modality_dropout` dropped gets exactly what it gets without it."""
    torch.manual_seed(3)
    model = model_class(architecture)(feature_config(architecture=architecture, modality_dropout=0.5, **NO_DROPOUT))
    samples = [feature_sample(4 + i % 3, 6 + i % 4, 2 + i % 2) for i in range(12)]
    batch = MultimodalCollator()(samples)
    with torch.no_grad():
        trained = model.train()(**batch)
        model.eval()
        dropped = 0
        for index, sample in enumerate(samples):
            kept = [m for m, keep in zip(("text", "audio", "vision"), trained.modality_mask[index]) if keep]
            dropped += 3 - len(kept)
            alone = model(**MultimodalCollator()([{k: v for k, v in sample.items() if k.split("_")[0] in kept}]))
            torch.testing.assert_close(trained.logits[index], alone.logits[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(
                trained.modality_embeddings[index], alone.modality_embeddings[0], atol=1e-5, rtol=0
            )
            torch.testing.assert_close(trained.gate_values[index], alone.gate_values[0], atol=1e-5, rtol=0)
    assert dropped >= 3, "the seed drops some modalities"


def similarity_loss_by_hand(z: dict[str, np.ndarray], weight: float) -> float:
    """mean over pairs of [mean_i (1 - cos(z_a_i, z_b_i)) + weight * ||K_a - K_b||_F^2 / B^2]."""

    def normalised(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    names, terms = list(z), []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            za, zb = normalised(z[a]), normalised(z[b])
            alignment = np.mean(1 - np.sum(za * zb, axis=1))
            difference = za @ za.T - zb @ zb.T
            terms.append(alignment + weight * np.sum(difference**2) / len(za) ** 2)
    return float(np.mean(terms))


def test_the_invariance_loss_averages_over_the_three_modality_pairs():
    generator = ModalityInvariantGenerator(
        GiaMicConfig(text_feature_size=4, hidden_size=6, num_attention_heads=2, similarity_weight=0.7)
    )
    rng = np.random.default_rng(0)
    z = {m: rng.normal(size=(5, 6)).astype(np.float32) for m in ("text", "audio", "vision")}
    value = generator.invariance_loss({m: torch.from_numpy(v) for m, v in z.items()}, {m: torch.ones(5) for m in z})
    assert value.item() == pytest.approx(similarity_loss_by_hand(z, 0.7), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# The forward pass against the README's equations, written out independently with the model's own weights
# ---------------------------------------------------------------------------------------------------------------------


def layer_norm(x, norm, eps):
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * norm.weight + norm.bias


def attention(module, queries, keys, key_mask):
    """softmax(Q K^T / sqrt(d_head) over the valid keys) V, per head, then the output projection."""
    batch, heads, d = queries.shape[0], module.config.num_attention_heads, module.head_dim

    def split(x, linear):
        return linear(x).view(batch, x.shape[1], heads, d).transpose(1, 2)

    q, k, v = split(queries, module.q_proj), split(keys, module.k_proj), split(keys, module.v_proj)
    scores = q @ k.transpose(-1, -2) / d**0.5
    scores = scores.masked_fill(~key_mask.bool()[:, None, None, :], float("-inf"))
    context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, queries.shape[1], heads * d)
    return module.out_proj(context)


def masked_average(x, mask):
    weights = mask.float()[..., None]
    return (x * weights).sum(1) / weights.sum(1)


def reference_logits(model, inputs):
    """The README: projection + modality embedding; per layer S_a, C_(a<-b), G_(a<-b), Y_a, X_a; pooling; G; head."""
    config, core = model.config, model.gia_mic
    eps = config.layer_norm_eps
    modalities = [m for m in config.modalities if f"{m}_features" in inputs]
    masks = {m: inputs[f"{m}_feature_mask"] for m in modalities}
    x = {}
    for m in modalities:
        projection = core.projections[m]
        x[m] = layer_norm(projection.dense(inputs[f"{m}_features"]), projection.layer_norm, eps)
        x[m] = x[m] + projection.modality_embedding
    gate_sums = {}
    for layer in core.gated_interactive_attention.layers:
        s = {
            m: layer_norm(
                x[m] + attention(layer.self_attention[m], x[m], x[m], masks[m]), layer.self_attention_norm[m], eps
            )
            for m in modalities
        }
        new = {}
        for a in modalities:
            total = torch.zeros_like(s[a])
            for b in modalities:
                if b != a:
                    c = attention(layer.cross_attention[f"{a}_from_{b}"], s[a], s[b], masks[b])
                    gate_layer = layer.gates[f"{a}_from_{b}"].dense
                    g = torch.sigmoid(torch.cat([s[a], c], -1) @ gate_layer.weight.T + gate_layer.bias)
                    total = total + g * c
                    gate_sums[(a, b)] = gate_sums.get((a, b), 0) + masked_average(g.mean(-1, keepdim=True), masks[a])
            y = layer_norm(s[a] + total, layer.interaction_norm[a], eps)
            ffn = layer.feed_forward[a]
            new[a] = layer_norm(y + ffn.fc2(torch.nn.functional.gelu(ffn.fc1(y))), layer.output_norm[a], eps)
        x = new
    h = {}
    for m in modalities:
        pooler = core.poolers[m]
        if config.pooling == "mean":
            h[m] = masked_average(x[m], masks[m])
        else:
            scores = pooler.score(x[m]).squeeze(-1).masked_fill(~masks[m].bool(), float("-inf"))
            h[m] = (scores.softmax(-1)[..., None] * x[m]).sum(1)
    generator = core.generator
    z = {
        m: layer_norm(generator.fc2(torch.nn.functional.gelu(generator.fc1(h[m]))), generator.layer_norm, eps)
        for m in h
    }
    missing = dict(zip(config.modalities, core.missing_embeddings))  # stands in for an absent modality
    batch = next(iter(h.values())).shape[0]
    parts = [h[m] if m in h else missing[m].expand(batch, -1) for m in config.modalities]
    fused = torch.cat(parts + [sum(z.values()) / len(z)], dim=-1)
    layers = len(core.gated_interactive_attention.layers)
    zero = torch.zeros(batch)
    gates = torch.stack([gate_sums.get(pair, zero).squeeze(-1) / layers for pair in config.modality_pairs], dim=1)
    return model.classifier(fused), gates, z


@pytest.mark.parametrize(
    ("pooling", "layers", "given"),
    [
        ("mean", 2, ("text", "audio", "vision")),
        ("attention", 1, ("text", "audio", "vision")),
        ("mean", 2, ("text", "audio")),
        ("attention", 2, ("vision",)),
    ],
)
def test_the_forward_pass_follows_the_documented_equations(pooling, layers, given):
    """Weights large enough for peaked attention, uneven masks, an epsilon of its own: every term shows."""
    config = feature_config(
        pooling=pooling,
        num_gia_layers=layers,
        layer_norm_eps=0.5,
        initializer_range=0.3,
        similarity_weight=0.7,
        **NO_DROPOUT,
    )
    torch.manual_seed(1)
    model = GiaMicForEmotionRecognition(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or "norm" in name.split(".")[-2] or "embedding" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))  # LayerNorm affine and modality embeddings too
    samples = [feature_sample(t, a // 100, f) for t, a, f in UNEVEN] + [feature_sample(1, 1, 1)]  # one real step
    samples = [{k: v for k, v in sample.items() if k.split("_")[0] in given} for sample in samples]
    inputs = MultimodalCollator()(samples)
    labels = torch.tensor([0, 2, 1, 3])
    with torch.no_grad():
        output = model(**inputs, labels=labels)
        logits, gates, z = reference_logits(model, inputs)
    torch.testing.assert_close(output.logits, logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(output.gate_values, gates, atol=1e-6, rtol=1e-5)
    invariance = similarity_loss_by_hand({m: v.numpy() for m, v in z.items()}, 0.7) if len(z) > 1 else 0.0
    assert output.invariance_loss.item() == pytest.approx(invariance, rel=1e-4, abs=1e-7)
    cross_entropy = torch.nn.functional.cross_entropy(logits, labels)
    assert output.loss.item() == pytest.approx(cross_entropy.item() + config.invariance_weight * invariance, rel=1e-4)
    assert output.hidden_states is None and output.attentions is None, "only when asked for"


def test_calibration_temperatures_divide_the_logits_of_their_set_of_inputs(architecture, tmp_path):
    """Each set of inputs given has its own temperature; a set without one is unchanged; it saves with the model."""
    config = feature_config(architecture=architecture, **NO_DROPOUT)
    model = model_class(architecture)(config).eval()
    inputs = {m: torch.randn(2, 4, FEATURE_SIZES[f"{m}_feature_size"]) for m in ("text", "audio", "vision")}

    def logits(*given: str) -> torch.Tensor:
        with torch.no_grad():
            return model(**{f"{m}_features": inputs[m] for m in given}).logits

    plain = {given: logits(*given) for given in (("audio",), ("text", "audio"), ("text", "audio", "vision"))}
    model.config.temperatures = {"audio": 2.0, "text+audio+vision": 0.5}
    torch.testing.assert_close(logits("audio"), plain[("audio",)] / 2.0)
    torch.testing.assert_close(logits("text", "audio", "vision"), plain[("text", "audio", "vision")] / 0.5)
    torch.testing.assert_close(logits("text", "audio"), plain[("text", "audio")])
    model.save_pretrained(tmp_path)
    reloaded = model_class(architecture).from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(audio_features=inputs["audio"]).logits, plain[("audio",)] / 2.0)
    reordered = type(config)(**{**config.to_dict(), "temperatures": {"audio+text": 2.0}})
    assert reordered.temperatures == {"text+audio": 2.0}, "keys follow `modalities`' order, as the head looks up"
    for wrong in ({"smell": 1.0}, {"audio": 0.0}, {"audio": float("nan")}, {"audio": True}, {"text+text": 2.0}):
        with pytest.raises(ValueError, match="temperatures"):
            type(config)(**{**config.to_dict(), "temperatures": wrong})


def test_target_prior_adjusts_the_logits_after_the_loss(architecture, tmp_path):
    """
    Logit adjustment: the output logits gain log(target) - log(training) (uniform training prior when none is given)
    after the temperature; the loss is the unadjusted model's; the priors save with the model and are validated.
    """
    config = feature_config(architecture=architecture, **NO_DROPOUT)
    model = model_class(architecture)(config).eval()
    inputs = {"audio_features": torch.randn(3, 4, FEATURE_SIZES["audio_feature_size"])}
    labels = torch.tensor([0, 1, 2])
    with torch.no_grad():
        plain = model(**inputs, labels=labels)
    names = [config.id2label[i] for i in range(config.num_labels)]
    target = dict(zip(names, [4.0, 2.0, 1.0, 1.0]))  # normalised: 0.5, 0.25, 0.125, 0.125
    training = dict(zip(names, [1.0, 1.0, 1.0, 5.0]))  # 0.125, 0.125, 0.125, 0.625
    expected = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125])) - torch.log(
        torch.tensor([0.125, 0.125, 0.125, 0.625])
    )
    adjusted_config = type(config)(
        **{**config.to_dict(), "target_prior": target, "training_prior": training, "temperatures": {"audio": 2.0}}
    )
    adjusted = model_class(architecture)(adjusted_config).eval()
    adjusted.load_state_dict(model.state_dict())
    with torch.no_grad():
        output = adjusted(**inputs, labels=labels)
    torch.testing.assert_close(output.logits, plain.logits / 2.0 + expected)
    unadjusted_loss = torch.nn.functional.cross_entropy(plain.logits / 2.0, labels)
    assert output.classification_loss.item() == pytest.approx(unadjusted_loss.item(), rel=1e-5), "loss before it"
    adjusted.save_pretrained(tmp_path)
    reloaded = model_class(architecture).from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, output.logits)
    only_target = type(config)(**{**config.to_dict(), "target_prior": target})
    uniform = model_class(architecture)(only_target).eval()
    uniform.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            uniform(**inputs).logits, plain.logits + torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125]) * 4)
        )
    wrong_priors = (
        {"target_prior": {names[0]: 1.0}},
        {"target_prior": {**target, names[1]: 0.0}},
        {"target_prior": {**target, names[1]: True}},
        {"target_prior": {**target, "smell": 1.0}},
        {"training_prior": training},
    )
    for wrong in wrong_priors:
        with pytest.raises(ValueError, match="prior"):
            type(config)(**{**config.to_dict(), **wrong})
