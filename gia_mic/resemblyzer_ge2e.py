"""
Resemblyzer's GE2E speaker encoder (Apache-2.0), from the `resemblyzer` wheel's `pretrained.pt`, saved as the
safetensors file that `SpeakerEncoder.from_pretrained` reads: who speaks when, with no download and without
Resemblyzer's own librosa and webrtcvad dependencies (the package is never imported, only its file read).
"""

import importlib.util
from pathlib import Path

import torch
from safetensors.torch import save_file

from modeling_gia_mic.speakers_gia_mic import SPEAKERS_FILE, SpeakerEncoder


def packaged_speaker_encoder() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("The speaker encoder comes from `pip install --no-deps resemblyzer==0.1.4`.")
    return Path(spec.submodule_search_locations[0]) / "pretrained.pt"


def convert_resemblyzer(output: str | Path) -> Path:
    """The packaged encoder's weights (its training-only similarity scale left out) in `output/model.safetensors`."""
    checkpoint = torch.load(packaged_speaker_encoder(), map_location="cpu", weights_only=True)
    weights = {name: value for name, value in checkpoint["model_state"].items() if not name.startswith("similarity")}
    SpeakerEncoder().load_state_dict(weights)  # every weight of ours, of the right shape
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_file({name: value.contiguous() for name, value in weights.items()}, str(output / SPEAKERS_FILE))
    (output / "README.md").write_text(
        "Resemblyzer's GE2E speaker encoder (https://github.com/resemble-ai/Resemblyzer, Apache-2.0), converted from "
        "the `resemblyzer` package's `pretrained.pt`: it tells the speakers of a recording apart.\n"
    )
    return output
