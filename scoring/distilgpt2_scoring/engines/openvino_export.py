"""GPT-2 safetensors -> the OpenVINO model that OpenVINO GenAI's ContinuousBatchingPipeline serves.

Our own exporter, not optimum-intel: optimum-intel pins transformers and huggingface-hub below the
versions this project runs, and pulls a torchvision that does not load beside the CPU torch wheel.
GPT-2 is small enough to write out: the graph below is GPT-2's forward pass in plain torch
(layer norm, fused qkv projection, causal self-attention over a key/value cache, tanh-GELU MLP,
tied LM head), read straight from model.safetensors, so no transformers version can change it.

The traced graph is made stateful the way GenAI expects (the KV cache as model state behind a
`beam_idx` gather; inputs input_ids, attention_mask, position_ids, beam_idx; output logits);
GenAI turns its ScaledDotProductAttention into paged attention when it loads the model. Weights
are compressed to int8 (asymmetric, per output channel) with NNCF. The engine gets token ids,
never text: no tokenizer model is exported.

Reads a Hugging Face GPT-2 folder (config.json, model.safetensors: an MLflow model's model/).
Needs torch, openvino and nncf: `build` runs it in-process; the server, through engines.convert
in a subprocess, so that the serving process never imports torch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MODEL_XML = "openvino_model.xml"
EXPORT_RECORD = "export.json"
WEIGHT_FORMAT = "int8_asym"
# Kept beside the model: the pipeline reads generation defaults from it (we set every field per request).
COPIED_FILES = ("config.json", "generation_config.json")


class UnsupportedModel(ValueError):
    """The weights are not a GPT-2 language model this exporter can write out."""


def _gpt2_graph(weights_dir: Path):
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    config = json.loads((weights_dir / "config.json").read_text())
    if config.get("model_type") != "gpt2":
        raise UnsupportedModel(
            f"{weights_dir}/config.json: model_type {config.get('model_type')!r}; only gpt2 is exported"
        )
    if (
        config.get("scale_attn_by_inverse_layer_idx")
        or config.get("reorder_and_upcast_attn")
        or config.get("activation_function", "gelu_new") != "gelu_new"
    ):
        raise UnsupportedModel(f"{weights_dir}/config.json: a GPT-2 variant this exporter does not write out")
    state = {k.removeprefix("transformer."): v for k, v in load_file(str(weights_dir / "model.safetensors")).items()}
    layers, width, heads = int(config["n_layer"]), int(config["n_embd"]), int(config["n_head"])
    epsilon = float(config["layer_norm_epsilon"])
    tied = config.get("tie_word_embeddings", True) or "lm_head.weight" not in state
    head_size = width // heads

    class GPT2Graph(torch.nn.Module):
        """GPT-2's forward pass with an explicit key/value cache, as plain tensor operations."""

        def __init__(self):
            super().__init__()
            names = [n for n in state if not n.endswith((".attn.bias", ".attn.masked_bias"))]  # causal-mask buffers
            self.weights = torch.nn.ParameterDict(
                {n.replace(".", "/"): torch.nn.Parameter(state[n], requires_grad=False) for n in names}
            )

        def w(self, name: str):
            return self.weights[name.replace(".", "/")]

        def norm(self, x, name: str):
            return F.layer_norm(x, (width,), self.w(f"{name}.weight"), self.w(f"{name}.bias"), epsilon)

        def linear(self, x, name: str):  # GPT-2's Conv1D: weight is [in, out]
            return torch.matmul(x, self.w(f"{name}.weight")) + self.w(f"{name}.bias")

        def forward(self, input_ids, attention_mask, position_ids, past):
            batch, new = input_ids.shape
            total = attention_mask.shape[1]
            x = F.embedding(input_ids, self.w("wte.weight")) + F.embedding(position_ids, self.w("wpe.weight"))
            # New token t sits at position total - new + t and may see every earlier, unmasked token.
            query_at = torch.arange(new).unsqueeze(1) + (total - new)
            visible = (torch.arange(total).unsqueeze(0) <= query_at).unsqueeze(0).unsqueeze(0)
            visible = visible & attention_mask.bool()[:, None, None, :]
            presents = []
            for i in range(layers):
                q, k, v = self.linear(self.norm(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn").split(width, dim=2)
                q, k, v = (t.reshape(batch, new, heads, head_size).transpose(1, 2) for t in (q, k, v))
                k = torch.cat([past[2 * i], k], dim=2)
                v = torch.cat([past[2 * i + 1], v], dim=2)
                presents += [k, v]
                attended = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
                x = x + self.linear(attended.transpose(1, 2).reshape(batch, new, width), f"h.{i}.attn.c_proj")
                x = x + self.linear(
                    F.gelu(self.linear(self.norm(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc"), approximate="tanh"),
                    f"h.{i}.mlp.c_proj",
                )
            head = self.w("wte.weight") if tied else self.w("lm_head.weight")
            return (torch.matmul(self.norm(x, "ln_f"), head.t()), *presents)

    try:
        graph = GPT2Graph().eval()
        expected = {"wte/weight": (int(config["vocab_size"]), width), "wpe/weight": (int(config["n_positions"]), width)}
        for name, shape in expected.items():
            if tuple(graph.weights[name].shape) != shape:
                raise UnsupportedModel(
                    f"{name.replace('/', '.')} has shape {tuple(graph.weights[name].shape)}, config.json implies "
                    f"{shape}"
                )
    except KeyError as exc:
        raise UnsupportedModel(f"{weights_dir}/model.safetensors: no tensor {exc} of a GPT-2 model") from None
    return graph, layers, heads, head_size


def _kv_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def _make_stateful(model, layers: int, heads: int, head_size: int) -> None:
    """The KV cache becomes model state, reordered by `beam_idx`, starting empty for each batch."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops
    from openvino._offline_transformations import apply_make_stateful_transformation

    past, present = _kv_names(layers, "past_key_values"), _kv_names(layers, "present")
    beam_idx = ops.parameter(ov.PartialShape([-1]), ov.Type.i32, name="beam_idx")
    beam_idx.output(0).get_tensor().set_names({"beam_idx"})
    model.add_parameters([beam_idx])
    for name in past:
        port = model.input(name)
        consumers = port.get_target_inputs()
        reordered = ops.gather(port, beam_idx, ops.constant(0))
        for consumer in consumers:
            consumer.replace_source_output(reordered.output(0))
    model.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(model, dict(zip(past, present, strict=True)))
    batch = ops.gather(ops.shape_of(model.input("input_ids"), output_type="i64"), ops.constant([0]), ops.constant(0))
    empty = ops.concat([batch, ops.constant(np.array([heads, 0, head_size], dtype=np.int64))], axis=0)
    for op in model.get_ops():
        if op.get_type_name() == "ReadValue":
            op.set_arguments([ops.broadcast(ops.constant(0.0, dtype=ov.Type.f32), empty)])
    model.validate_nodes_and_infer_types()


def export(weights_dir: Path, output: Path) -> Path:
    """Write the int8 OpenVINO model of the GPT-2 in weights_dir into output (created; must not exist)."""
    import nncf
    import openvino as ov
    import torch

    weights_dir, output = Path(weights_dir), Path(output)
    graph, layers, heads, head_size = _gpt2_graph(weights_dir)
    batch, new, cached = 2, 3, 4  # any small shapes: every dimension is made dynamic below
    example = {
        "input_ids": torch.ones(batch, new, dtype=torch.long),
        "attention_mask": torch.ones(batch, cached + new, dtype=torch.long),
        "position_ids": torch.arange(cached, cached + new).repeat(batch, 1),
        "past": [torch.zeros(batch, heads, cached, head_size) for _ in range(2 * layers)],
    }
    with torch.no_grad():
        model = ov.convert_model(graph, example_input=example)
    inputs = ["input_ids", "attention_mask", "position_ids", *_kv_names(layers, "past_key_values")]
    for port, name in zip(model.inputs, inputs, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, ["logits", *_kv_names(layers, "present")], strict=True):
        port.get_tensor().set_names({name})
    shapes = {name: [-1, -1] for name in inputs[:3]} | {name: [-1, heads, -1, head_size] for name in inputs[3:]}
    model.reshape({model.input(name): ov.PartialShape(shape) for name, shape in shapes.items()})
    _make_stateful(model, layers, heads, head_size)
    model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    output.mkdir(parents=True)
    ov.save_model(model, str(output / MODEL_XML))
    for name in COPIED_FILES:
        if (weights_dir / name).is_file():
            shutil.copyfile(weights_dir / name, output / name)
    record = {
        "format": WEIGHT_FORMAT,
        "openvino": ov.__version__,
        "nncf": nncf.__version__,
        "torch": torch.__version__.split("+")[0],
    }
    (output / EXPORT_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return output
