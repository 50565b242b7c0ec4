"""The models of Rocktäschel et al. (2016), Sections 2.1-2.5, and Bowman et al.'s LSTM baseline.

Rocktäschel, Grefenstette, Hermann, Kočiský and Blunsom, "Reasoning about Entailment with
Neural Attention", ICLR 2016.

Every model reads word vectors through :class:`WordInputs` (Section 3: fixed pretrained
vectors, trained vectors for the training-set words without one, a linear projection to ``k``).
With premise ``P`` (``L`` words) and hypothesis ``H`` (``N - L`` words):

- ``conditional`` (2.2): an LSTM (Eqs. 1-6) reads the premise; a second LSTM (the same one if
  ``shared``) reads a delimiter and the hypothesis, its memory cell starting from the premise
  LSTM's last cell state ``c_L`` and its hidden state from zeros (the paper initialises only
  the memory; ``hand_on`` chooses otherwise). The representation is the last output ``h_N``.
- ``attention`` (2.3): as ``conditional``, then with the premise outputs ``Y = [h_1 … h_L]``::

      M  = tanh(W^y Y + W^h h_N ⊗ e_L)        α = softmax(wᵀ M)        r = Y αᵀ
      h* = tanh(W^p r + W^x h_N)

- ``word_by_word`` (2.4): attention weights ``α_t`` for every word ``x_t`` of the hypothesis
  (the delimiter's step does not attend unless ``attend_delimiter``), with a memory ``r_t`` of
  what was attended (zero before the first attending step)::

      M_t = tanh(W^y Y + (W^h h_t + W^r r_{t-1}) ⊗ e_L)    α_t = softmax(wᵀ M_t)
      r_t = Y α_tᵀ + tanh(W^t r_{t-1})                      h*  = tanh(W^p r_N + W^x h_N)

  ``W^y Y`` is computed once per premise, outside the loop over the hypothesis.
- ``two_way`` (2.5): the same model, with the same weights, also reads the hypothesis first and
  attends over it from the premise; the two representations are concatenated.
- ``bowman_lstm``: Bowman et al. (2015)'s baseline, each sentence encoded alone by the LSTM,
  the two last outputs concatenated and passed through three 200d tanh layers.

The classifier (2.2) is "a softmax layer over the output of a non-linear projection ... into
the target space of the three classes", ``W ∈ R^{3×k}`` (the parameter counts rule out a hidden
layer): ``softmax(W h + b)`` by default, ``softmax(tanh(W h + b))`` with ``output_tanh=True``,
the literal reading, whose three logits saturate at +1 early in training (the gradient then
vanishes; ``results/rocktaschel2016.md``). Masking: padded premise positions get exactly
zero attention (:class:`layers.AdditiveAttention`), padded hypothesis steps keep the LSTM state
and the word-by-word memory (:func:`layers.masked_recurrence`), and the "last" states are
those after each sentence's last real word. ``cell="gru"`` puts Cho et al.'s GRU
(:class:`layers.ChoGRU`) in place of the LSTMs; it has no memory cell, so the second GRU starts
from the first one's last state.

Dropout (the paper tunes its rate but does not say where it goes): on the projected word
vectors and on the representation before the classifier.

Two choices the paper leaves open or that ablations test (``results/rocktaschel2016.md``):

- ``hand_on``, what the second LSTM starts from: ``"cell"`` (the paper: ``c_0 = c_L``,
  ``h_0 = 0``), ``"state"`` (``c_0 = c_L`` and ``h_0 = h_L``) or ``"none"`` (zeros: the
  premise reaches the hypothesis only through the attention; attention models only).
- ``attend_delimiter``: the word-by-word attention also attends at the delimiter's step (an
  extra first row of weights, and ``r`` updated there).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from layers.additive_attention import AdditiveAttention
from layers.gru import ChoGRU
from layers.recurrence import masked_recurrence
from layers.tracking import track_layers

MODELS = ("bowman_lstm", "conditional", "attention", "word_by_word")
CELLS = ("lstm", "gru")
#: What the second recurrent layer starts from (see the module docstring).
HAND_ON = ("cell", "state", "none")


@keras.saving.register_keras_serializable(package="keras_papers")
class WordInputs(keras.layers.Layer):
    """Word vectors as in Section 3, projected to the model size.

    Words with a pretrained vector keep it fixed; words of the training set without one get a
    vector drawn from U(-0.05, 0.05) that is trained (``trainable_rows``); the other words
    without one (seen only at evaluation) keep a fixed random vector. A linear layer maps the
    vectors to ``k``: ``x_i = W e_i + b``.

    Args:
        vocab_size: rows of the tables; row 0 is padding.
        input_dim: the word vectors' size (300 for word2vec, 50 for GloVe 6B 50d).
        k: the projected size.
        trainable_rows: ids of the trained rows.

    Call args:
        ids: int ``[batch, length]``.

    Returns:
        ``[batch, length, k]``.

    Example:

    ```python
    words = WordInputs(len(vocab), 50, 100, trainable_rows=[1, 2, 57])
    words.build((None, None))
    words.set_vectors(matrix)             # [len(vocab), 50]
    x = words(ids)
    ```
    """

    def __init__(self, vocab_size: int, input_dim: int, k: int,
                 trainable_rows: Sequence[int] = (), **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.input_dim, self.k = int(vocab_size), int(input_dim), int(k)
        self.trainable_rows = sorted(int(i) for i in trainable_rows)
        self.projection = keras.layers.Dense(self.k, name="projection")

    def build(self, ids_shape=None):
        shape = (self.vocab_size, self.input_dim)
        self.fixed = self.add_weight(shape=shape, name="fixed_vectors", trainable=False,
                                     initializer="zeros")
        self.learned = self.add_weight(shape=shape, name="trained_vectors",
                                       initializer=keras.initializers.RandomUniform(-0.05, 0.05))
        is_trained = [[0.0] for _ in range(self.vocab_size)]
        for row in self.trainable_rows:
            is_trained[row] = [1.0]
        self.is_trained = self.add_weight(shape=(self.vocab_size, 1), name="is_trained",
                                          trainable=False,
                                          initializer=keras.initializers.Constant(is_trained))
        self.projection.build((None, self.input_dim))

    def set_vectors(self, matrix) -> None:
        """Loads the vectors (both tables; only the trained rows of ``learned`` are used)."""
        self.fixed.assign(matrix)
        self.learned.assign(matrix)

    def embedding_weights(self) -> list:
        """The word vector tables and which rows are trained (left out of |θ|M)."""
        return [self.fixed, self.learned, self.is_trained]

    def call(self, ids):
        trained = ops.take(self.is_trained, ids, axis=0)
        vectors = (trained * ops.take(self.learned, ids, axis=0)
                   + (1.0 - trained) * ops.take(self.fixed, ids, axis=0))
        return self.projection(ops.cast(vectors, self.compute_dtype))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"vocab_size": self.vocab_size, "input_dim": self.input_dim, "k": self.k,
                       "trainable_rows": self.trainable_rows})
        return config


@keras.saving.register_keras_serializable(package="keras_papers")
class EntailmentModel(keras.Model):
    """A Table 1 model (see the module docstring).

    Args:
        model: ``"bowman_lstm"``, ``"conditional"``, ``"attention"`` or ``"word_by_word"``.
        vocab_size, input_dim, trainable_rows: see :class:`WordInputs`.
        delimiter_id: the id of the delimiter the second LSTM reads first.
        k: the LSTM size.
        cell: ``"lstm"`` (the paper) or ``"gru"`` (:class:`layers.ChoGRU`).
        shared: one recurrent layer reads both sentences.
        two_way: read both ways and concatenate (Section 2.5).
        dropout: the dropout rate.
        output_tanh: a tanh on the three logits (the literal reading of Section 2.2).
        hand_on: the second layer's initial state, ``"cell"`` (the paper), ``"state"`` or
            ``"none"`` (module docstring).
        attend_delimiter: word-by-word attention attends at the delimiter's step too.

    Call args:
        inputs: ``{"premise": ids [batch, L], "hypothesis": ids [batch, H]}``, 0-padded,
            without the delimiter.

    Returns:
        ``{"logits": [batch, 3]}``, with ``"attention"``: ``[batch, L]`` (``attention``) or
        ``[batch, H, L]`` (``word_by_word``: a row for each hypothesis word; ``[batch, 1 + H,
        L]`` with ``attend_delimiter``, the delimiter's row first), and with ``two_way`` also
        ``"attention_reverse"`` (the premise attending over the hypothesis, the hypothesis read
        first). Padded columns are exactly 0; a padded hypothesis row repeats the last real one.
    """

    def __init__(self, model: str, vocab_size: int, input_dim: int, delimiter_id: int,
                 k: int = 100, cell: str = "lstm", shared: bool = False, two_way: bool = False,
                 dropout: float = 0.0, output_tanh: bool = False,
                 trainable_rows: Sequence[int] = (), hand_on: str = "cell",
                 attend_delimiter: bool = False, **kwargs):
        super().__init__(**kwargs)
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; valid: {', '.join(CELLS)}")
        if two_way and model not in ("attention", "word_by_word"):
            raise ValueError("two_way needs model='attention' or 'word_by_word'")
        if hand_on not in HAND_ON:
            raise ValueError(f"unknown hand_on {hand_on!r}; valid: {', '.join(HAND_ON)}")
        if hand_on == "none" and model not in ("attention", "word_by_word"):
            raise ValueError("hand_on='none' needs model='attention' or 'word_by_word' (the "
                             "premise would not reach the classifier)")
        if attend_delimiter and model != "word_by_word":
            raise ValueError("attend_delimiter needs model='word_by_word'")
        self.hand_on, self.attend_delimiter = hand_on, bool(attend_delimiter)
        self.kind, self.k, self.cell, self.shared = model, int(k), cell, bool(shared)
        self.two_way, self.dropout_rate, self.output_tanh = bool(two_way), dropout, output_tanh
        self.vocab_size, self.input_dim = int(vocab_size), int(input_dim)
        self.delimiter_id = int(delimiter_id)
        self.words = WordInputs(vocab_size, input_dim, k, trainable_rows, name="words")
        self.first = self._recurrent("first_rnn")
        self.second = self.first if shared else self._recurrent("second_rnn")
        self.drop = keras.layers.Dropout(dropout)
        if model in ("attention", "word_by_word"):
            self.attention = AdditiveAttention(k, name="attention")          # W^y, W^h, w
            self.w_p = keras.layers.Dense(k, use_bias=False, name="w_p")
            self.w_x = keras.layers.Dense(k, use_bias=False, name="w_x")
        if model == "word_by_word":
            self.w_r = keras.layers.Dense(k, use_bias=False, name="w_r")
            self.w_t = keras.layers.Dense(k, use_bias=False, name="w_t")
        if model in ("attention", "word_by_word"):  # used piecewise in the word-by-word loop
            self.attention.build((None, k), (None, None, k))
            for dense in ("w_p", "w_x", "w_r", "w_t"):
                if hasattr(self, dense):
                    getattr(self, dense).build((None, k))
        self.hidden = [keras.layers.Dense(200, activation="tanh", name=f"tanh_{i}")
                       for i in range(3 if model == "bowman_lstm" else 0)]
        track_layers(self, self.hidden)  # in the checkpoint as tanh_0, tanh_1, tanh_2
        self.classifier = keras.layers.Dense(3, name="classifier")

    def _recurrent(self, name: str):
        if self.cell == "gru":
            return ChoGRU(self.k, return_sequences=True, return_state=True, name=name)
        return keras.layers.LSTM(self.k, return_sequences=True, return_state=True, name=name)

    def _read(self, layer, x, mask, initial=None):
        """``(outputs [B, T, k], last h, last c)``; ``c`` is ``None`` for the GRU.

        The LSTM is Eqs. (1)-(6), ``keras.layers.LSTM``."""
        if self.cell == "gru":
            outputs, h = layer(x, mask=mask, initial_state=initial)
            return outputs, h, None
        outputs, h, c = layer(x, mask=mask, initial_state=initial)
        return outputs, h, c

    def _hand_on(self, h, c):
        """The second recurrent layer's initial state from the first one's last ``h``, ``c``
        (``hand_on``; ``None``: zeros). The GRU has no memory cell: ``"cell"`` and
        ``"state"`` both hand on its ``h``."""
        if self.hand_on == "none":
            return None
        if self.cell == "gru":
            return h
        return [h if self.hand_on == "state" else ops.zeros_like(h), c]

    def _pair(self, first_ids, second_ids, training):
        """One direction: ``(representation, attention or None)``."""
        first_ids = ops.cast(first_ids, "int32")
        second_ids = ops.cast(second_ids, "int32")
        delimiter = ops.full_like(second_ids[:, :1], self.delimiter_id)
        second_ids = ops.concatenate([delimiter, second_ids], axis=1)
        first_mask, second_mask = first_ids > 0, second_ids > 0
        x1 = self.drop(self.words(first_ids), training=training)
        x2 = self.drop(self.words(second_ids), training=training)
        premise, h_l, c_l = self._read(self.first, x1, first_mask)               # Eq. (1)-(6)
        hypothesis, h_n, _ = self._read(self.second, x2, second_mask, self._hand_on(h_l, c_l))
        if self.kind == "conditional":
            return h_n, None
        if self.kind == "attention":
            r, alpha = self.attention(h_n, premise, mask=first_mask)        # Eq. (7), (8), (9)
            return ops.tanh(self.w_p(r) + self.w_x(h_n)), alpha             # Eq. (10)
        if not self.attend_delimiter:               # the first attending step: the first word
            hypothesis, second_mask = hypothesis[:, 1:], second_mask[:, 1:]
        keys = self.attention.project_keys(premise)                         # W^y Y, once
        queries = ops.transpose(self.attention.project_query(hypothesis), (1, 0, 2))

        def step(query_t, r, constants):
            context, alpha = self.attention.attend(query_t + self.w_r(r), keys,   # Eq. (11), (12)
                                                   premise, first_mask)
            return alpha, context + ops.tanh(self.w_t(r))                   # Eq. (13)

        r0 = ops.zeros_like(h_n)
        alphas, _, r_n = masked_recurrence(step, queries, r0,
                                           mask=ops.transpose(second_mask, (1, 0)))
        return (ops.tanh(self.w_p(r_n) + self.w_x(h_n)),                     # Eq. (14)
                ops.transpose(alphas, (1, 0, 2)))

    def call(self, inputs, training=False):
        premise, hypothesis = inputs["premise"], inputs["hypothesis"]
        outputs = {}
        if self.kind == "bowman_lstm":
            _, u, _ = self._read(self.first, self.drop(self.words(premise), training=training),
                                 premise > 0)
            _, v, _ = self._read(self.first, self.drop(self.words(hypothesis),
                                                        training=training), hypothesis > 0)
            features = ops.concatenate([u, v], axis=-1)
            for layer in self.hidden:
                features = self.drop(layer(features), training=training)
        else:
            features, attention = self._pair(premise, hypothesis, training)
            if attention is not None:
                outputs["attention"] = attention
            if self.two_way:
                reverse, attention = self._pair(hypothesis, premise, training)
                features = ops.concatenate([features, reverse], axis=-1)
                outputs["attention_reverse"] = attention
            features = self.drop(features, training=training)
        logits = self.classifier(features)
        outputs["logits"] = ops.tanh(logits) if self.output_tanh else logits
        return outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"model": self.kind, "vocab_size": self.vocab_size,
                       "input_dim": self.input_dim, "delimiter_id": self.delimiter_id,
                       "k": self.k, "cell": self.cell, "shared": self.shared,
                       "two_way": self.two_way, "dropout": self.dropout_rate,
                       "output_tanh": self.output_tanh,
                       "trainable_rows": self.words.trainable_rows, "hand_on": self.hand_on,
                       "attend_delimiter": self.attend_delimiter})
        return config


def parameter_count(model: EntailmentModel) -> int:
    """|θ|M of Table 1: every parameter except the word vector tables (the projection to k
    counts)."""
    excluded = {id(w) for w in model.words.embedding_weights()}
    return int(sum(int(ops.size(w)) for w in model.weights if id(w) not in excluded))
