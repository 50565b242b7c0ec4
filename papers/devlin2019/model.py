"""BERT sentence(-pair) classifiers for fine-tuning (Devlin et al. 2019, §4.1, Figure 4a/b).

The classifier reads the features of :mod:`datasets.wordpiece` (``token_ids``, ``segment_ids``,
``padding_mask``), runs the pre-trained encoder, pools one vector per example and maps it to class
logits:

- ``pooling="cls"``: BERT's ``C``, the final hidden state of ``[CLS]`` through the pre-trained
  tanh pooler (keras-hub's ``pooled_output``), as in §4.1;
- ``pooling="mean"``: the mean of the final hidden states over real tokens
  (:class:`layers.bert_heads.MaskedMeanPooling`), how sentence-transformers checkpoints such as
  all-MiniLM-L6-v2 were trained.

Then :class:`layers.bert_heads.ClassificationHead`: dropout 0.1, optional hidden layers and a
linear layer ``K × H`` (§4.1: "the only new parameters introduced during fine-tuning are
classification layer weights W ∈ R^{K×H}"). Every parameter, the encoder's included, is
fine-tuned.

Example:

```python
model = build_classifier("minilm_l6_h384", num_classes=2, pooling="cls")
logits = model({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
```
"""

from __future__ import annotations

from typing import Sequence

import keras

from layers.bert_heads import ClassificationHead, MaskedMeanPooling
from papers.devlin2019 import encoders

POOLINGS = ("cls", "mean")


def build_classifier(encoder: str | encoders.EncoderSpec | keras.Model, num_classes: int, *,
                     pooling: str = "cls", hidden_dims: Sequence[int] = (),
                     dropout: float = 0.1, encoder_dropout: float | None = None,
                     load_weights: bool = True, name: str = "bert_classifier") -> keras.Model:
    """A functional ``keras.Model`` from BERT features to ``[batch, num_classes]`` logits.

    Args:
        encoder: an encoder name or spec (:func:`encoders.load_encoder` builds it) or an
            already built ``keras_hub.models.BertBackbone``.
        num_classes: the number of labels.
        pooling: ``"cls"`` (the pooled ``[CLS]`` state) or ``"mean"`` (masked mean of tokens).
        hidden_dims: sizes of extra dense layers in the head (BERT uses none).
        dropout: the head's dropout (0.1).
        encoder_dropout: the encoder's dropout; ``None`` uses ``dropout``.
        load_weights: load the pre-trained weights (``False``: random, for tests).
        name: the model's name.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
    if isinstance(encoder, keras.Model):
        backbone = encoder
    else:
        backbone = encoders.load_encoder(
            encoder, dropout=dropout if encoder_dropout is None else encoder_dropout,
            load_weights=load_weights)
    inputs = {key: keras.Input(shape=(None,), dtype="int32", name=key)
              for key in ("token_ids", "segment_ids", "padding_mask")}
    outputs = backbone(inputs)
    if pooling == "cls":
        sentence = outputs["pooled_output"]
    else:
        sentence = MaskedMeanPooling(name="mean_pooling")(outputs["sequence_output"],
                                                          inputs["padding_mask"])
    logits = ClassificationHead(num_classes, hidden_dims=hidden_dims, dropout=dropout,
                                name="classifier")(sentence)
    return keras.Model(inputs, logits, name=name)
