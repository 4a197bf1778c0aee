"""
GIA-MIC demo: speak, type and show your face; see the emotion and which modality pairs drove the decision.

    python app.py --model ../.cache/demo/gia-mic-starter        # or a Hub id; also GIA_MIC_MODEL=...

The model is loaded exactly as on a Hugging Face Space: `AutoModelForAudioClassification` / `AutoProcessor` with
`trust_remote_code=True`. A Whisper model in the model's `asr/` subfolder (or GIA_MIC_ASR) transcribes speech when no
text is typed.
"""

import argparse
import os
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import soundfile as sf
import torch
from PIL import Image, UnidentifiedImageError
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    AutoModelForSpeechSeq2Seq,
    AutoProcessor,
    AutoTokenizer,
)


HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = os.environ.get("GIA_MIC_MODEL", str(HERE.parent / ".cache" / "demo" / "gia-mic-starter"))
MAX_AUDIO_SECONDS = 30.0
MIN_AUDIO_SECONDS = 0.1
ARROWS = {"text": "text", "audio": "speech", "vision": "face"}


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """Mono float32 audio from a file: soundfile for WAV/FLAC/OGG, PyAV for the rest (webm/mp3/m4a recordings)."""
    try:
        waveform, rate = sf.read(path, dtype="float32", always_2d=True)
        return waveform.mean(axis=1), rate
    except (sf.LibsndfileError, RuntimeError):
        pass
    import av

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise gr.Error("The uploaded audio file has no audio stream.")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
            chunks = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for out in resampler.resample(frame)
            ]
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise gr.Error(
            f"Could not read the audio file ({Path(path).name}): it is not a supported audio format."
        ) from error
    if not chunks:
        raise gr.Error("The audio file is empty.")
    return np.concatenate(chunks), 16000


def read_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise gr.Error(f"Could not read the image ({Path(path).name}): it is not a valid image file.") from error


def with_readable_image_errors(component: gr.Image) -> gr.Image:
    """
    An unreadable upload raises a readable error in the page, instead of failing inside `gr.Image`'s preprocessing.
    (The instance's method is wrapped: a `gr.Image` subclass would make Gradio write a .pyi file beside this app.)
    """
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except (UnidentifiedImageError, OSError) as error:
            name = Path(payload.orig_name or payload.path or "image").name
            raise gr.Error(f"Could not read the image ({name}): it is not a valid image file.") from error

    component.preprocess = checked
    return component


class EmotionDemo:
    """The model, its processor and (optionally) a Whisper ASR model, with one `predict` for the page."""

    def __init__(self, model_id: str, asr_id: str | None = None):
        self.model = AutoModelForAudioClassification.from_pretrained(model_id, trust_remote_code=True).eval()
        self.processor = AutoProcessor.from_pretrained(model_id, trust_remote_code=True)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.pairs = [tuple(pair) for pair in self.model.config.modality_pairs]
        asr_id = asr_id or (str(Path(model_id) / "asr") if (Path(model_id) / "asr").is_dir() else None)
        self.asr = None
        if asr_id:
            self.asr = (
                AutoModelForSpeechSeq2Seq.from_pretrained(asr_id).eval(),
                AutoFeatureExtractor.from_pretrained(asr_id),
                AutoTokenizer.from_pretrained(asr_id),
            )

    def transcribe(self, waveform: np.ndarray, rate: int) -> str:
        model, extractor, tokenizer = self.asr
        # The processor's module (the model's remote code) has the resampler; Whisper wants 16 kHz, padded to 30 s.
        resample = sys.modules[type(self.processor).__module__].resample
        waveform = resample(waveform.astype(np.float32), rate, extractor.sampling_rate)
        audio = extractor(waveform, sampling_rate=extractor.sampling_rate, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(audio.input_features, max_new_tokens=120)
        return tokenizer.decode(ids[0], skip_special_tokens=True).strip()

    def inputs(self, audio_path, text, image_path, video_path) -> tuple[dict, str, list[str]]:
        """Validate the page's inputs and turn them into model inputs; returns (inputs, transcript, modalities)."""
        text = (text or "").strip()
        if not any((audio_path, text, image_path, video_path)):
            raise gr.Error("Give at least one input: record or upload speech, type a sentence, or show a face.")
        kwargs, modalities, transcript = {}, [], ""
        if audio_path:
            waveform, rate = read_audio(audio_path)
            seconds = len(waveform) / rate
            if seconds < MIN_AUDIO_SECONDS or not np.abs(waveform).max() > 0:
                raise gr.Error("The audio is empty or silent; record at least a short sentence.")
            if seconds > MAX_AUDIO_SECONDS:
                raise gr.Error(f"The audio is {seconds:.0f} s long; the demo takes up to {MAX_AUDIO_SECONDS:.0f} s.")
            kwargs.update(audio=waveform, sampling_rate=rate)
            modalities.append("audio")
            if not text and self.asr is not None:
                transcript = self.transcribe(waveform, rate)
                text = transcript
        if text:
            kwargs["text"] = text
            modalities.append("text")
            transcript = transcript or text
        if image_path and video_path:
            raise gr.Error("Show your face either as an image or as a video, not both.")
        if image_path:
            kwargs["images"] = [read_image(image_path)]
        if video_path:
            kwargs["videos"] = video_path
        if image_path or video_path:
            modalities.append("vision")
        try:
            batch = self.processor(**kwargs)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        return dict(batch), transcript, modalities

    def probabilities(self, batch: dict) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            output = self.model(**batch)
        return output.logits.softmax(-1)[0].numpy(), output.gate_values[0].numpy()

    def predict(self, audio_path, text, image_path, video_path):
        batch, transcript, modalities = self.inputs(audio_path, text, image_path, video_path)
        probabilities, gates = self.probabilities(batch)
        label = {name: float(p) for name, p in zip(self.labels, probabilities)}
        present = [(a, b) for a, b in self.pairs if a in modalities and b in modalities]
        gate_table = pd.DataFrame(
            {
                "interaction": [f"{ARROWS[b]} → {ARROWS[a]}" for a, b in present],
                "gate": [float(gates[self.pairs.index(pair)]) for pair in present],
            }
        )
        per_modality = []
        for modality in modalities:
            alone, _ = self.probabilities({k: v for k, v in batch.items() if input_modality(k) == modality})
            per_modality.append([ARROWS[modality], self.labels[int(alone.argmax())], round(float(alone.max()), 3)])
        table = pd.DataFrame(per_modality, columns=["input", "prediction alone", "confidence"])
        return label, gate_table, transcript, table


def input_modality(name: str) -> str:
    if name in ("input_ids", "attention_mask"):
        return "text"
    if name in ("input_values", "input_features", "audio_attention_mask"):
        return "audio"
    return "vision"


def examples() -> list[list]:
    folder = HERE / "examples"
    speech, face = folder / "speech.wav", folder / "face.png"
    rows = [[None, "I can't believe you did this to me, I'm furious!", None, None]]
    if speech.is_file() and face.is_file():
        rows.insert(0, [str(speech), "", str(face), None])
        rows.append([None, "What a wonderful surprise, thank you so much!", str(face), None])
    return rows


def build_demo(demo_model: EmotionDemo) -> gr.Blocks:
    with gr.Blocks(title="GIA-MIC multimodal emotion recognition") as page:
        gr.Markdown(
            "# GIA-MIC: multimodal emotion recognition\n"
            "Speak, type and show your face — any of them. The model fuses them with gated interactive attention "
            "(He, Mi & Toda, INTERSPEECH 2025); the gates show how much each input flowed into the others."
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Speech")
                text = gr.Textbox(label="Text (left empty: transcribed from the speech)", lines=2)
                with gr.Row():
                    image = with_readable_image_errors(
                        gr.Image(sources=["webcam", "upload"], type="filepath", label="Face")
                    )
                    video = gr.Video(sources=["upload", "webcam"], label="Face video")
                button = gr.Button("Recognise emotion", variant="primary")
            with gr.Column():
                label = gr.Label(num_top_classes=len(demo_model.labels), label="Emotion")
                gates = gr.BarPlot(x="interaction", y="gate", y_lim=[0, 1], label="Gate values (which input drove it)")
                transcript = gr.Textbox(label="Text used", interactive=False)
                per_modality = gr.Dataframe(
                    headers=["input", "prediction alone", "confidence"], label="Each input alone", interactive=False
                )
        button.click(
            demo_model.predict,
            [audio, text, image, video],
            [label, gates, transcript, per_modality],
            api_name="predict",
        )
        gr.Examples(examples(), [audio, text, image, video])
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description="GIA-MIC demo")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or folder (default: GIA_MIC_MODEL)")
    parser.add_argument("--asr", default=os.environ.get("GIA_MIC_ASR"), help="Whisper for speech-to-text")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--open-browser", action="store_true")
    args = parser.parse_args()
    page = build_demo(EmotionDemo(args.model, args.asr))
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, inbrowser=args.open_browser
    )


if __name__ == "__main__":
    main()
