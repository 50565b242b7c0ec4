"""The RNN Encoder-Decoder of Cho et al. (2014), Section 2 and Appendix A.1.

Cho, van Merriënboer, Gulcehre, Bahdanau, Bougares, Schwenk and Bengio, "Learning Phrase
Representations using RNN Encoder-Decoder for Statistical Machine Translation", EMNLP 2014.

The encoder (Section 2.2, Appendix A.1.1) reads the source ``x_1 ... x_N`` with the gated unit
of Section 2.3 and summarises it as ``c = tanh(V h_N)``. The decoder (Appendix A.1.2) starts
from ``h'_0 = tanh(V' c)`` and conditions both its hidden state and its output distribution
on the previous symbol ``y_{t-1}`` and on ``c`` at every step:

```
h'_t  = z' ⊙ h'_{t-1} + (1 - z') ⊙ h~'_t
h~'_t = tanh(W' e(y_{t-1}) + r' ⊙ (U' h'_{t-1} + C c))
z'    = σ(W'_z e(y_{t-1}) + U'_z h'_{t-1} + C_z c)
r'    = σ(W'_r e(y_{t-1}) + U'_r h'_{t-1} + C_r c)
s'_t  = O_h h'_t + O_y y_{t-1} + O_c c
s_t,i = max(s'_t,2i-1, s'_t,2i)                       (maxout, pool 2)
p(y_t = j | y_<t, x) = softmax_j(G s_t)
```

with ``e(y_0) = 0`` (and, for the output term, ``y_0 = 0``): the ``<start>`` symbol that
begins every decoder input stands for this zero vector. The model is trained to maximise the
conditional log-likelihood of equation 4, ``log p(y | x) = Σ_t log p(y_t | y_<t, x)``.
"""

from __future__ import annotations

import keras
from keras import ops

from layers.gru import ChoGRU
from layers.maxout import Maxout
from layers.recurrence import masked_recurrence


@keras.saving.register_keras_serializable(package="keras_papers")
class ConditionalGRUDecoder(keras.layers.Layer):
    """The decoder's gated hidden state, conditioned on the summary ``c`` (Appendix A.1.2).

    ```
    z'    = σ(W'_z e(y_{t-1}) + U'_z h'_{t-1} + C_z c)
    r'    = σ(W'_r e(y_{t-1}) + U'_r h'_{t-1} + C_r c)
    h~'_t = tanh(W' e(y_{t-1}) + r' ⊙ (U' h'_{t-1} + C c))
    h'_t  = z' ⊙ h'_{t-1} + (1 - z') ⊙ h~'_t
    ```

    Unlike the encoder's unit (equation 8), the paper's decoder applies the reset gate *after*
    the recurrent product, to ``U' h'_{t-1} + C c``; one product ``h'_{t-1} @ [U'_z U'_r U']``
    per step therefore suffices. The terms in ``c`` are constant over time and are computed
    once per sequence (:meth:`context_terms`); the input terms ``W' e(y_{t-1})`` of all steps
    are one product (:meth:`input_projection`).

    Weights: ``kernel`` ``[embedding_dim, 3u]`` = ``[W'_z | W'_r | W']``, ``recurrent_kernel``
    ``[u, 3u]`` = ``[U'_z | U'_r | U']``, ``context_kernel`` ``[context_dim, 3u]`` =
    ``[C_z | C_r | C]``, ``bias`` ``[3u]`` (on the input projections).

    Args:
        units: the decoder's hidden size ``u``.
        kernel_initializer, recurrent_initializer, context_initializer: initialisers of
            ``W'``, ``U'`` and ``C``.
        loop: how the teacher-forced recurrence runs (see
            :func:`layers.recurrence.time_major_loop`; ``"fused"`` means ``"auto"`` here).

    Call args:
        embeddings: ``e(y_{t-1})`` for all steps, ``[batch, time, embedding_dim]``.
        initial_state: ``h'_0``, ``[batch, units]``.
        context: ``c``, ``[batch, context_dim]``.

    Returns:
        ``h'_1 ... h'_T``, ``[batch, time, units]``.
    """

    def __init__(self, units: int, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", context_initializer="glorot_uniform",
                 loop: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.context_initializer = keras.initializers.get(context_initializer)
        self.loop = loop

    def build(self, embeddings_shape, initial_state_shape=None, context_shape=None):
        u = self.units
        self.kernel = self.add_weight(shape=(embeddings_shape[-1], 3 * u), name="kernel",
                                      initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(shape=(u, 3 * u), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)
        self.context_kernel = self.add_weight(shape=(context_shape[-1], 3 * u),
                                              name="context_kernel",
                                              initializer=self.context_initializer)
        self.bias = self.add_weight(shape=(3 * u,), name="bias", initializer="zeros")

    def context_terms(self, context):
        """Returns ``([C_z c | C_r c], C c)``: ``[batch, 2u]`` and ``[batch, u]``."""
        projected = ops.matmul(context, self.context_kernel)
        return projected[..., : 2 * self.units], projected[..., 2 * self.units:]

    def input_projection(self, embeddings):
        """Returns ``[W'_z | W'_r | W'] e(y_{t-1}) + b``, ``[..., 3u]``."""
        flat = ops.reshape(embeddings, (-1, embeddings.shape[-1]))
        projected = ops.matmul(flat, self.kernel) + self.bias
        return ops.reshape(projected, (*ops.shape(embeddings)[:-1], 3 * self.units))

    def cell(self, h, x_zr, x_h, context_h, recurrent_kernel=None):
        """One step: ``h'_{t-1} -> h'_t``.

        Args:
            h: ``h'_{t-1}``, ``[batch, u]``.
            x_zr: ``W'_z e + C_z c`` and ``W'_r e + C_r c`` (with biases), ``[batch, 2u]``.
            x_h: ``W' e`` (with bias), ``[batch, u]``.
            context_h: ``C c``, ``[batch, u]``.
            recurrent_kernel: ``U'`` as a tensor (read once outside a loop); default the
                variable.
        """
        u = self.units
        if recurrent_kernel is None:
            recurrent_kernel = self.recurrent_kernel
        recurrent = ops.matmul(h, recurrent_kernel)
        zr = ops.sigmoid(x_zr + recurrent[:, : 2 * u])
        z, r = zr[:, :u], zr[:, u:]
        hh = ops.tanh(x_h + r * (recurrent[:, 2 * u:] + context_h))
        return hh + z * (h - hh)

    def call(self, embeddings, initial_state, context):
        u = self.units
        context_zr, context_h = self.context_terms(context)
        x = ops.transpose(self.input_projection(embeddings), (1, 0, 2))  # [T, B, 3u]
        x_zr = x[..., : 2 * u] + context_zr
        x_h = x[..., 2 * u:]
        recurrent_kernel = ops.convert_to_tensor(self.recurrent_kernel)

        def cell(xs, state, constants):
            h = self.cell(state, xs[0], xs[1], context_h, recurrent_kernel)
            return h, h

        loop = "auto" if self.loop == "fused" else self.loop
        states, _, _ = masked_recurrence(cell, (x_zr, x_h), initial_state, loop=loop)
        return ops.transpose(states, (1, 0, 2))

    def compute_output_shape(self, embeddings_shape, initial_state_shape=None,
                             context_shape=None):
        return (*embeddings_shape[:-1], self.units)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "context_initializer": keras.initializers.serialize(self.context_initializer),
            "loop": self.loop,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_papers")
class RNNEncoderDecoder(keras.Model):
    """RNN Encoder-Decoder with gated units and a maxout output layer (Cho et al. 2014).

    Section 2 and Appendix A.1. The encoder is a :class:`layers.ChoGRU` over the source
    embeddings ``e(x_t)`` (initial state 0); its final state ``h_N`` (the state after the last
    unpadded token) gives the summary ``c = tanh(V h_N)`` (A.1.1). The decoder starts from
    ``h'_0 = tanh(V' c)`` and runs :class:`ConditionalGRUDecoder` on the previous symbols
    (A.1.2); the output layer is ``softmax(G maxout(O_h h'_t + O_y y_{t-1} + O_c c))`` with
    pool size 2 (A.1.2). ``O_y y_{t-1}`` multiplies the 1-of-K vector of ``y_{t-1}``, i.e. it is
    a lookup table of its own, separate from the embedding ``e``. The paper factorises
    ``G = G_l G_r`` (``G_l`` ``K x 500``) for speed; ``softmax_rank > 0`` does the same.

    Paper settings: 1000 hidden units, 100-dimensional embeddings, ``G = G_l G_r`` with
    ``G_l`` ``K x 500`` and ``G_r`` ``500 x 1000`` (so 1000 maxout units, ``s'`` of size 2000);
    weights drawn from ``N(0, 0.01²)`` except the recurrent matrices, which are random
    orthogonal (``init_std=0.01``, the default). The default sizes here are small.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes, special symbols included.
        embedding_dim: size of ``e(x)`` and ``e(y)``.
        hidden_units: size of ``h`` and ``h'``.
        context_dim: size of ``c`` (default ``hidden_units``, as in the paper).
        maxout_units: size of ``s`` (``s'`` has twice as many).
        softmax_rank: rank of ``G = G_l G_r``; 0 for a full matrix.
        init_std: standard deviation of the Gaussian initialisation of the non-recurrent
            weights (paper: 0.01); 0 for Keras' Glorot-uniform defaults.
        pad_id, start_id, end_id: ids of ``<pad>``, ``<start>`` and ``<end>``.
        loop: how the recurrences run (see :class:`layers.ChoGRU`).

    Call args:
        inputs: a dict with ``"source"`` ``[batch, S]`` (``pad_id``-padded) and
            ``"decoder_input"`` ``[batch, T]`` = ``<start> y_1 ... y_{T-1}`` (teacher forcing).

    Returns:
        logits ``[batch, T, target_vocab_size]`` of ``p(y_t | y_<t, x)``.

    Example:

    ```python
    model = RNNEncoderDecoder(23, 23, embedding_dim=32, hidden_units=64, maxout_units=32)
    logits = model({"source": src, "decoder_input": dec_in})      # teacher forcing
    state, constants = model.start_decoding(src)
    beams = layers.decoding.beam_search(model.decode_step, state, constants, beam_width=5,
                                        start_id=1, end_id=2, pad_id=0, max_length=12)
    ```
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, embedding_dim: int = 64,
                 hidden_units: int = 128, context_dim: int | None = None,
                 maxout_units: int = 64, softmax_rank: int = 0, init_std: float = 0.01,
                 pad_id: int = 0, start_id: int = 1, end_id: int = 2, loop: str = "auto",
                 **kwargs):
        super().__init__(**kwargs)
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = int(hidden_units)
        self.context_dim = int(context_dim or hidden_units)
        self.maxout_units = int(maxout_units)
        self.softmax_rank = int(softmax_rank)
        self.init_std = float(init_std)
        self.pad_id, self.start_id, self.end_id = int(pad_id), int(start_id), int(end_id)
        self.loop = loop

        def init():
            if self.init_std > 0:
                return keras.initializers.RandomNormal(stddev=self.init_std)
            return keras.initializers.GlorotUniform()

        embedding_init = init() if self.init_std > 0 else "uniform"
        e, u, c, m = self.embedding_dim, self.hidden_units, self.context_dim, self.maxout_units
        self.source_embedding = keras.layers.Embedding(
            self.source_vocab_size, e, embeddings_initializer=embedding_init,
            name="source_embedding")
        self.encoder = ChoGRU(u, kernel_initializer=init(), loop=loop, name="encoder")
        self.to_context = keras.layers.Dense(
            c, activation="tanh", kernel_initializer=init(), name="to_context")         # V
        self.to_decoder_state = keras.layers.Dense(
            u, activation="tanh", kernel_initializer=init(), name="to_decoder_state")   # V'
        self.target_embedding = keras.layers.Embedding(
            self.target_vocab_size, e, embeddings_initializer=embedding_init,
            name="target_embedding")
        self.decoder = ConditionalGRUDecoder(u, kernel_initializer=init(),
                                             context_initializer=init(), loop=loop,
                                             name="decoder")
        self.output_h = keras.layers.Dense(2 * m, kernel_initializer=init(),
                                           name="output_h")                     # O_h
        self.output_y = keras.layers.Embedding(self.target_vocab_size, 2 * m,
                                               embeddings_initializer=embedding_init,
                                               name="output_y")                 # O_y
        self.output_c = keras.layers.Dense(2 * m, use_bias=False, kernel_initializer=init(),
                                           name="output_c")                     # O_c
        self.maxout = Maxout(2, name="maxout")
        if self.softmax_rank:
            self.softmax_r = keras.layers.Dense(self.softmax_rank, use_bias=False,
                                                kernel_initializer=init(),
                                                name="softmax_r")               # G_r
        else:
            self.softmax_r = None
        self.softmax = keras.layers.Dense(self.target_vocab_size, kernel_initializer=init(),
                                          name="softmax")                       # G (G_l)

        # Build every weight now, so that the decoding methods work before any call and under
        # a distribution strategy's scope.
        self.source_embedding.build((None, None))
        self.encoder.build((None, None, e))
        self.to_context.build((None, u))
        self.to_decoder_state.build((None, c))
        self.target_embedding.build((None, None))
        self.decoder.build((None, None, e), (None, u), (None, c))
        self.output_h.build((None, u))
        self.output_y.build((None,))
        self.output_c.build((None, c))
        self.maxout.build((None, 2 * m))
        if self.softmax_r is not None:
            self.softmax_r.build((None, m))
            self.softmax.build((None, self.softmax_rank))
        else:
            self.softmax.build((None, m))
        self.built = True

    # ------------------------------------------------------------------------------ pieces
    def encode(self, source, training: bool = False):
        """Returns ``(c, h'_0)``: ``c = tanh(V h_N)`` and ``h'_0 = tanh(V' c)`` (A.1.1-A.1.2)."""
        source = ops.convert_to_tensor(source, dtype="int32")
        mask = ops.not_equal(source, self.pad_id)
        h_last = self.encoder(self.source_embedding(source), mask=mask, training=training)
        context = self.to_context(h_last)
        return context, self.to_decoder_state(context)

    def _previous(self, previous_tokens):
        """``e(y_{t-1})`` and ``O_y y_{t-1}``, zero for ``y_0 = <start>``."""
        not_start = ops.expand_dims(
            ops.cast(ops.not_equal(previous_tokens, self.start_id), self.compute_dtype), -1)
        return (self.target_embedding(previous_tokens) * not_start,
                self.output_y(previous_tokens) * not_start)

    def _logits(self, states, previous_out, context_out):
        """``G maxout(O_h h'_t + O_y y_{t-1} + O_c c)`` (A.1.2)."""
        s = self.maxout(self.output_h(states) + previous_out + context_out)
        if self.softmax_r is not None:
            s = self.softmax_r(s)
        return self.softmax(s)

    def call(self, inputs, training: bool = False):
        context, h0 = self.encode(inputs["source"], training=training)
        previous = ops.convert_to_tensor(inputs["decoder_input"], dtype="int32")
        previous_embedding, previous_out = self._previous(previous)
        states = self.decoder(previous_embedding, h0, context)
        return self._logits(states, previous_out, ops.expand_dims(self.output_c(context), 1))

    # ------------------------------------------------------------------------------ decoding
    def start_decoding(self, source):
        """``(h'_0, constants)`` for :mod:`layers.decoding`; the constants are the decoder's
        terms in ``c``, computed once per source: ``([C_z c | C_r c], C c, O_c c)``."""
        context, h = self.encode(source)
        context_zr, context_h = self.decoder.context_terms(context)
        return h, (context_zr, context_h, self.output_c(context))

    def decode_step(self, previous_tokens, state, constants):
        """One decoder step for :mod:`layers.decoding`: ``(y_{t-1}, h'_{t-1}) -> (logits of
        y_t, h'_t, {})``.

        Args:
            previous_tokens: ``[n]`` int32 (``<start>`` at the first step).
            state: ``h'_{t-1}``, ``[n, u]``.
            constants: from :meth:`start_decoding`, one row per hypothesis.
        """
        context_zr, context_h, context_out = constants
        previous_embedding, previous_out = self._previous(previous_tokens)
        x = self.decoder.input_projection(previous_embedding)
        u = self.hidden_units
        state = self.decoder.cell(state, x[:, : 2 * u] + context_zr, x[:, 2 * u:], context_h)
        return self._logits(state, previous_out, context_out), state, {}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "context_dim": self.context_dim,
            "maxout_units": self.maxout_units,
            "softmax_rank": self.softmax_rank,
            "init_std": self.init_std,
            "pad_id": self.pad_id,
            "start_id": self.start_id,
            "end_id": self.end_id,
            "loop": self.loop,
        })
        return config
