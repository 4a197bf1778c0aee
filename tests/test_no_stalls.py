"""
The model on the GPU path: a training step reads no tensor value on the host (each read waits for the device), the
forward pass and loss compile into one graph, and `TrainingArguments(torch_compile=True)` trains as eager does.
Host syncs are counted on CPU under a `TorchDispatchMode` (the ops that copy a value to the host), and attributed to
the innermost Python frame that issued them: this package's, or a transformers tower's own.
"""

import collections
import traceback
from pathlib import Path

import pytest
import torch
from conftest import TINY_WHISPER, feature_config, feature_inputs, model_class, raw_config, raw_inputs
from test_trainer import learnable_dataset
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoConfig, Trainer, TrainingArguments

import modeling_gia_mic
from gia_mic.collator import MultimodalCollator


PACKAGE = str(Path(modeling_gia_mic.__file__).parent)
HOST_READS = ("_local_scalar_dense", "nonzero", "is_nonzero", "item")
MODES = ["features", "raw", "raw-group-norm", "raw-whisper"]


class HostSyncs(TorchDispatchMode):
    """Counts the ops that need a tensor's value on the host (incl. boolean-mask indexing), by who issued them."""

    def __init__(self):
        super().__init__()
        self.by_caller = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        boolean_index = "index" in name and any(
            isinstance(index, torch.Tensor) and index.dtype == torch.bool
            for arg in args
            if isinstance(arg, list | tuple)
            for index in arg
        )
        if boolean_index or any(read in name for read in HOST_READS):
            frames = [
                f for f in traceback.extract_stack()[:-1] if "/torch/" not in f.filename and f.filename != __file__
            ]
            caller = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "autograd"
            self.by_caller[(name, caller)] += 1
        return func(*args, **(kwargs or {}))

    def ours(self) -> dict:
        return {key: count for key, count in self.by_caller.items() if key[1].startswith(PACKAGE)}


def training_model(architecture: str, mode: str):
    """A model in training mode (modality dropout on) and a batch with uneven padding, for `mode`."""
    if mode == "features":
        config = feature_config(architecture=architecture, modality_dropout=0.3)
        inputs = feature_inputs()
        inputs["text_feature_mask"][1, 3:] = 0
    else:
        config = raw_config(architecture=architecture, modality_dropout=0.3)
        inputs = raw_inputs()
        inputs["attention_mask"][1, 5:] = 0
        inputs["frame_mask"][2, 2:] = 0
        if mode == "raw-group-norm":
            config.audio_config.feat_extract_norm, config.audio_config.do_stable_layer_norm = "group", False
        if mode == "raw-whisper":
            config.audio_config = AutoConfig.for_model(**TINY_WHISPER)
            del inputs["input_values"]
            inputs["input_features"] = torch.randn(3, 16, 40)
            inputs["audio_attention_mask"] = torch.ones(3, 40, dtype=torch.long)
        inputs["audio_attention_mask"][0, inputs["audio_attention_mask"].shape[1] // 2 :] = 0
    return model_class(architecture)(config).train(), inputs


@pytest.mark.parametrize("mode", MODES)
def test_a_training_step_reads_no_tensor_value_on_the_host(architecture, mode):
    model, inputs = training_model(architecture, mode)
    labels = torch.tensor([0, 1, 3])
    with HostSyncs() as syncs:
        model(**inputs, labels=labels).loss.backward()
    assert syncs.ours() == {}
    if mode == "features":  # no tower: nothing at all, the backward pass included
        assert syncs.by_caller == {}
    validating, _ = training_model(architecture, mode)
    validating.config.validate_inputs = True
    with HostSyncs() as checked:
        validating(**inputs, labels=labels)
    assert checked.ours(), "the opt-in checks do read values: the counter sees them"


@pytest.mark.parametrize("mode", MODES)
def test_forward_and_loss_compile_without_a_graph_break_of_ours(architecture, mode):
    model, inputs = training_model(architecture, mode)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(lambda **batch: model(**batch, labels=torch.tensor([0, 1, 3])).loss)(**inputs)
    ours = [reason for reason in explained.break_reasons if reason.user_stack[-1].filename.startswith(PACKAGE)]
    assert ours == [], [reason.reason.splitlines()[0] for reason in ours]
    if mode == "features":
        assert explained.graph_count == 1 and explained.graph_break_count == 0


# The default backend (inductor: C++ code generation, about a minute on 2 cores) for GIA-MIC; the others through the
# same graph capture (dynamo + AOTAutograd, forward and backward) without code generation.
@pytest.mark.parametrize(
    ("architecture", "backend"), [("gia_mic", None), ("mcihn", "aot_eager"), ("miar", "aot_eager")]
)
def test_torch_compile_training_matches_eager(architecture, backend, tmp_path):
    """
    `TrainingArguments(torch_compile=True)`: the same logged losses and weights as eager training, to 1e-4. Without
    dropout (compiled code draws its random numbers its own way), with SGD (Adam's first steps magnify rounding).
    """
    no_dropout = {"hidden_dropout": 0.0, "attention_dropout": 0.0, "classifier_dropout": 0.0}

    def train(compiled: bool) -> tuple[list[float], dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = model_class(architecture)(feature_config(("text", "audio"), architecture=architecture, **no_dropout))
        args = TrainingArguments(
            output_dir=str(tmp_path / str(compiled)),
            per_device_train_batch_size=8,
            max_steps=3,
            logging_steps=1,
            optim="sgd",
            learning_rate=0.05,
            torch_compile=compiled,
            torch_compile_backend=backend if compiled else None,
            remove_unused_columns=False,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            seed=0,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=learnable_dataset(32, seed=4), data_collator=MultimodalCollator()
        )
        torch._dynamo.reset()
        trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        return losses, {name: value.detach().clone() for name, value in model.state_dict().items()}

    eager_losses, eager_weights = train(compiled=False)
    compiled_losses, compiled_weights = train(compiled=True)
    assert len(eager_losses) == 3
    assert compiled_losses == pytest.approx(eager_losses, abs=1e-4)
    for name, value in eager_weights.items():
        torch.testing.assert_close(compiled_weights[name.removeprefix("_orig_mod.")], value, atol=1e-4, rtol=0)
