"""
Resemblyzer's GE2E speaker encoder (Apache-2.0), from the `resemblyzer` wheel's `pretrained.pt`, saved as the
safetensors file that `SpeakerEncoder.from_pretrained` reads: a model folder then tells speakers apart in a process
without Resemblyzer installed (the package is never imported, only its file read).
"""

from pathlib import Path

from safetensors.torch import save_file

from modeling_gia_mic.speakers_gia_mic import SPEAKERS_FILE, SpeakerEncoder, packaged_speaker_file, resemblyzer_weights


def convert_resemblyzer(output: str | Path) -> Path:
    """The packaged encoder's weights in `output/model.safetensors`, with a README naming their source."""
    packaged = packaged_speaker_file()
    if packaged is None:
        raise ImportError("The speaker encoder comes from `pip install --no-deps resemblyzer==0.1.4`.")
    weights = resemblyzer_weights(packaged)
    SpeakerEncoder().load_state_dict(weights)  # every weight of ours, of the right shape
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_file({name: value.contiguous() for name, value in weights.items()}, str(output / SPEAKERS_FILE))
    (output / "README.md").write_text(
        "Resemblyzer's GE2E speaker encoder (https://github.com/resemble-ai/Resemblyzer, Apache-2.0), converted from "
        "the `resemblyzer` package's `pretrained.pt`: it tells the speakers of a recording apart.\n"
    )
    return output
