"""The caption decoders of Xu et al. (2015), Sections 3.1.2 and 4, and the course's GRU variant.

Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel and Bengio, "Show, Attend and Tell: Neural
Image Caption Generation with Visual Attention", ICML 2015. Where the paper is silent this
follows the authors' code (kelvinxu/arctic-captions, ``capgen.py``).

The decoder reads annotation vectors ``a = {a_1 … a_L}`` (a frozen CNN's features, see
:mod:`papers.xu2015.encoders`). At step ``t``, with ``E y_{t-1}`` the previous word's embedding
(a zero vector for ``<start>``, as in ``capgen.py``):

```
e_ti  = f_att(a_i, h_{t-1}) = wᵀ tanh(W_a a_i + b + W_h h_{t-1}) + c    (4; capgen.py's MLP)
α_t   = softmax(e_t) over the L locations                               (5)
ẑ_t   = β_t Σ_i α_ti a_i,   β_t = σ(f_β(h_{t-1}))                        (6, 13; §4.2.1)
i, f, o, g = σ, σ, σ, tanh of T(E y_{t-1}, h_{t-1}, ẑ_t)                (1)
c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)                         (2, 3)
p(y_t) ∝ exp(L_o tanh(E y_{t-1} + L_h h_t + L_z ẑ_t))                   (7, capgen.py's tanh)
c_0 = tanh(f_init,c(mean_i a_i)),  h_0 = tanh(f_init,h(mean_i a_i))      (§3.1.2)
```

``W_a a_i + b`` does not depend on ``t``: it is computed once per image. The deep output layer
applies the tanh of the authors' code, which Eq. 7 as printed does not have: without it the
layer is a product of linear maps (a single low-rank linear layer), not a deep output layer,
and the published numbers were computed by the code. Dropout: on ``h_t`` before the output
layer and on the tanh's output (``capgen.py``'s ``use_dropout``).

``kind``:

- ``"soft"`` (§4.2): the context is the expectation ``Σ_i α_ti a_i``.
- ``"hard"`` (§4.1): in training, one location ``s_t ~ Multinoulli(α_t)`` per step; with
  probability 0.5 the expected context is used instead, drawn per image (``coin="image"``, the
  paper's "for a given image") or once per mini-batch (``coin="batch"``, ``capgen.py``). The
  model returns what the REINFORCE estimator needs: ``log α_t(s_t)``, the entropy of ``α_t``
  and which images sampled. At test time the expected context is used (``capgen.py``'s default
  for decoding).
- ``"gru"``: the course's lab (the TensorFlow image-captioning tutorial) with its bugs fixed:
  the features go through a ReLU layer, Bahdanau attention from the previous hidden state, a
  GRU (Cho et al.'s, reset before the recurrent product) on ``[context; E y_{t-1}]`` whose
  state is carried from step to step (the tutorial restarted it from zeros), ``h_0`` from the
  mean feature (the tutorial's was zero), output ``Dense(units) → Dense(vocab)``; no β gate,
  no deep output, no doubly stochastic term.
"""

from __future__ import annotations

import keras
from keras import ops

from layers.additive_attention import AdditiveAttention
from layers.recurrence import masked_recurrence

KINDS = ("soft", "hard", "gru")
COINS = ("image", "batch")


@keras.saving.register_keras_serializable(package="keras_papers")
class CaptionDecoder(keras.Model):
    """Attention caption decoder (see the module docstring).

    Args:
        kind: ``"soft"``, ``"hard"`` or ``"gru"``.
        vocab_size: ``K``, special tokens included.
        feature_dim: ``D``.
        embedding_dim: ``m``.
        units: ``n``, the LSTM (GRU) size.
        attention_units: the attention MLP's hidden size (``capgen.py`` uses ``D``).
        dropout: the dropout rate.
        start_id: the id of ``<start>`` (its embedding is the zero vector).
        coin: ``"image"`` or ``"batch"``: what the hard attention's 0.5 coin is drawn for.
        seed: seed of the hard attention's samples.

    Call args:
        inputs: ``{"features": [B, L, D], "caption_in": [B, T]}``; ``caption_in`` is
            ``<start> y_1 … y_{T-1}``, 0-padded (teacher forcing). Padded steps (token 0)
            leave the state unchanged and their outputs are not used by the loss.
        training: dropout, and sampling for ``"hard"``.
        draws: hard attention in training only: ``(gumbel [B, T, L], sampled [B])`` to use
            instead of drawing them (Gumbel noise that picks ``s_t = argmax(log α_t + g_t)``,
            and whether each image samples), so a caller can fix the samples.

    Returns:
        ``{"logits": [B, T, K], "attention": [B, T, L]}`` (and for ``"hard"`` in training
        ``"log_sample_prob"`` ``[B, T]``, ``"entropy"`` ``[B, T]``, ``"sampled"`` ``[B]``).
    """

    def __init__(self, kind: str, vocab_size: int, feature_dim: int, *, embedding_dim: int = 256,
                 units: int = 512, attention_units: int = 512, dropout: float = 0.5,
                 start_id: int = 2, coin: str = "image", seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"unknown decoder kind {kind!r}; valid: {', '.join(KINDS)}")
        if coin not in COINS:
            raise ValueError(f"unknown coin {coin!r}; valid: {', '.join(COINS)}")
        self.coin = coin
        self.kind, self.vocab_size, self.feature_dim = kind, int(vocab_size), int(feature_dim)
        self.embedding_dim, self.units = int(embedding_dim), int(units)
        self.attention_units, self.dropout_rate = int(attention_units), float(dropout)
        self.start_id, self.seed = int(start_id), seed
        m, n, d = self.embedding_dim, self.units, self.feature_dim
        self.embedding = keras.layers.Embedding(vocab_size, m, name="embedding")        # E
        self.attention = AdditiveAttention(attention_units, use_bias=True, name="attention")
        self.init_h = keras.layers.Dense(n, activation="tanh", name="init_h")
        self.drop = keras.layers.Dropout(dropout, seed=seed)
        if kind == "gru":
            self.encode = keras.layers.Dense(m, activation="relu", name="encode")
            self.cell = keras.layers.GRUCell(n, reset_after=False, name="gru")
            self.fc1 = keras.layers.Dense(n, name="fc1")
            self.fc2 = keras.layers.Dense(vocab_size, name="fc2")
            context_dim = m
        else:
            self.init_c = keras.layers.Dense(n, activation="tanh", name="init_c")
            self.selector = keras.layers.Dense(1, activation="sigmoid", name="selector")  # β
            self.cell = keras.layers.LSTMCell(n, name="lstm")
            self.out_h = keras.layers.Dense(m, name="out_h")                              # L_h
            self.out_z = keras.layers.Dense(m, name="out_z")                              # L_z
            self.out = keras.layers.Dense(vocab_size, name="out")                         # L_o
            context_dim = d
        self.sample_seed = keras.random.SeedGenerator(seed)
        if kind == "hard":  # REINFORCE's moving average of log p(y | s̃) (§4.1)
            self.baseline = self.add_weight(shape=(), name="reinforce_baseline",
                                            initializer="zeros", trainable=False,
                                            aggregation="mean")
        # Every weight is built now, so that decoding works before any call.
        self.embedding.build((None,))
        self.attention.build((None, n), (None, None, context_dim))
        self.init_h.build((None, context_dim))
        self.cell.build((None, m + context_dim))
        if kind == "gru":
            self.encode.build((None, None, d))
            self.fc1.build((None, n))
            self.fc2.build((None, n))
        else:
            self.init_c.build((None, d))
            self.selector.build((None, n))
            self.out_h.build((None, n))
            self.out_z.build((None, d))
            self.out.build((None, m))
        self.built = True

    # ------------------------------------------------------------------------------ pieces
    def start(self, features, training: bool = False):
        """``(state, constants)``: the initial state from the mean annotation, and per image
        the annotations with their attention projection ``W_a a_i + b`` (computed once)."""
        features = ops.cast(features, self.compute_dtype)
        if self.kind == "gru":
            features = self.encode(features)
        mean = ops.mean(features, axis=1)
        h = self.init_h(mean)
        state = (h,) if self.kind == "gru" else (h, self.init_c(mean))
        return state, (features, self.attention.project_keys(features))

    def _previous(self, tokens):
        """``E y_{t-1}``, zero for ``<start>``."""
        not_start = ops.cast(ops.not_equal(tokens, self.start_id), self.compute_dtype)
        return self.embedding(tokens) * ops.expand_dims(not_start, -1)

    def _attend(self, h, constants, choice=None):
        """``(ẑ_t, α_t)``; with ``choice`` (``[B, L]``: one-hot samples, or ``α_t``) the context
        is ``Σ_i choice_i a_i`` instead of the expectation."""
        annotations, keys = constants
        context, alpha = self.attention.attend(self.attention.project_query(h), keys,
                                               annotations)
        if choice is not None:
            context = ops.sum(ops.cast(choice(alpha), annotations.dtype)[..., None]
                              * annotations, axis=1)
        if self.kind != "gru":
            context = self.selector(h) * context                                # β_t
        return context, alpha

    def _recur(self, embedded, state, context):
        x = ops.concatenate([context, embedded] if self.kind == "gru" else
                            [embedded, context], axis=-1)
        h, state = self.cell(x, list(state))
        return h, tuple(state)

    def _logits(self, embedded, h, context, training=False):
        if self.kind == "gru":
            return self.fc2(self.fc1(h))
        h = self.drop(h, training=training)
        deep = ops.tanh(embedded + self.out_h(h) + self.out_z(context))          # Eq. 7
        return self.out(self.drop(deep, training=training))

    def decode_step(self, previous_tokens, state, constants):
        """One step for :mod:`layers.decoding` (expected context; no dropout)."""
        embedded = self._previous(previous_tokens)
        context, alpha = self._attend(state[0], constants)
        h, state = self._recur(embedded, state, context)
        return self._logits(embedded, h, context), state, {"attention": alpha}

    # ------------------------------------------------------------------------------ teacher forcing
    def draw(self, batch, steps, locations):
        """The hard attention's random draws: Gumbel noise ``[B, T, L]`` and the coin ``[B]``
        (True: the image samples a location; False: it uses the expected context)."""
        uniform = keras.random.uniform((batch, steps, locations), 1e-6, 1.0 - 1e-6,
                                       seed=self.sample_seed)
        coin = keras.random.uniform((batch if self.coin == "image" else 1,),
                                    seed=self.sample_seed) < 0.5
        return -ops.log(-ops.log(uniform)), ops.broadcast_to(coin, (batch,))

    def call(self, inputs, training=False, draws=None):
        tokens = ops.cast(inputs["caption_in"], "int32")
        state, constants = self.start(inputs["features"], training)
        embedded = self._previous(tokens)                                         # [B, T, m]
        hard = self.kind == "hard" and training
        per_step = [ops.transpose(embedded, (1, 0, 2))]
        if hard:
            if draws is None:
                draws = self.draw(ops.shape(tokens)[0], ops.shape(tokens)[1],
                                  ops.shape(constants[0])[1])
            gumbel, sampled = ops.cast(draws[0], "float32"), ops.cast(draws[1], "bool")
            per_step.append(ops.transpose(gumbel, (1, 0, 2)))

        def cell(xs, state, _):
            embedded_t, extra = xs[0], ()
            if hard:
                picked = {}

                def choose(alpha):  # s_t by the Gumbel-max trick, or α_t for unsampled images
                    log_alpha = ops.log(ops.maximum(ops.cast(alpha, "float32"), 1e-12))
                    one_hot = ops.one_hot(ops.argmax(log_alpha + xs[1], axis=-1),
                                          ops.shape(alpha)[-1])
                    picked.update(log_alpha=log_alpha, one_hot=one_hot)
                    return ops.where(sampled[:, None], one_hot, alpha)

                context, alpha = self._attend(state[0], constants, choose)
                extra = (ops.sum(picked["one_hot"] * picked["log_alpha"], axis=-1),  # log α(s)
                         -ops.sum(alpha * picked["log_alpha"], axis=-1))             # H[α_t]
            else:
                context, alpha = self._attend(state[0], constants)
            h, state = self._recur(embedded_t, state, context)
            return (h, context, alpha) + extra, state

        outputs, _, _ = masked_recurrence(cell, tuple(per_step), state,
                                          mask=ops.transpose(tokens > 0, (1, 0)))
        h, context, alpha = (ops.transpose(x, (1, 0) + tuple(range(2, len(x.shape))))
                             for x in outputs[:3])
        result = {"logits": self._logits(embedded, h, context, training), "attention": alpha}
        if hard:
            result.update(log_sample_prob=ops.transpose(outputs[3], (1, 0)),
                          entropy=ops.transpose(outputs[4], (1, 0)),
                          sampled=ops.cast(sampled, "float32"))
        return result

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"kind": self.kind, "vocab_size": self.vocab_size,
                       "feature_dim": self.feature_dim, "embedding_dim": self.embedding_dim,
                       "units": self.units, "attention_units": self.attention_units,
                       "dropout": self.dropout_rate, "start_id": self.start_id,
                       "coin": self.coin, "seed": self.seed})
        return config
