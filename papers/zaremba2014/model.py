"""The LSTM language model of Zaremba, Sutskever and Vinyals (2014), with optional tied
embeddings (Press & Wolf 2017; Inan et al. 2017).

Zaremba, Sutskever and Vinyals, "Recurrent Neural Network Regularization", arXiv:1409.2329
(2014). Section 3.1 gives the LSTM, Section 3.2 its regularisation: dropout ``D`` on the
non-recurrent connections only (the input of every layer, from the word embeddings up, and the
last layer's output before the softmax); the recurrent connections ``h_{t-1} → h_t`` and the
memory cells are never dropped, so the dropout noise passes ``L + 1`` times through the network
whatever the distance between two words.
"""

from __future__ import annotations

import keras
from keras import ops

from layers.lstm_fused import fused_lstm_recurrence
from layers.recurrence import time_major_loop
from layers.tracking import track_layers


def uniform(scale: float) -> keras.initializers.Initializer:
    """U(-scale, scale), the paper's initialisation of every parameter.

    One initializer per weight: an unseeded Keras initializer draws its seed once, when it is
    made, so one instance used for two weights of the same shape gives them equal values."""
    return keras.initializers.RandomUniform(-scale, scale)


@keras.saving.register_keras_serializable(package="keras_papers")
class ZarembaLSTM(keras.layers.Layer):
    """One LSTM layer as in Zaremba et al. (2014), Section 3.1 (the paper numbers no equations).

    At every time step ``t``, from the layer's input ``x_t`` (``D(h^{l-1}_t)``: the layer below,
    already dropped out) and its previous state::

        (i, f, o, g) = (σ, σ, σ, tanh)(T_{2n,4n}(x_t, h_{t-1}))       gates and candidate
        c_t = f ⊙ c_{t-1} + i ⊙ g                                     memory cell
        h_t = o ⊙ tanh(c_t)

    with ``T_{2n,4n}(x, h) = x W + h U + b`` (one affine map, one bias). The input products
    ``x_t W + b`` of every step are one matrix product before the recurrence; each step then
    multiplies ``h_{t-1} U``. On TensorFlow (``fused=True``) the recurrence is
    :func:`layers.lstm_fused.fused_lstm_recurrence`, a ``tf.while_loop`` with a hand-written
    backward pass through time (one product per step; ``∂L/∂U`` as one product over all steps);
    otherwise the same equations in ``keras.ops`` under
    :func:`layers.recurrence.time_major_loop`, differentiated automatically. Both compile with
    XLA when the length is static.

    Masking: none. A language model's streams are dense (``<eos>`` separates reviews), so
    every step is real.

    Args:
        units: ``n``, the size of ``h`` and ``c``.
        init_scale: every weight and bias starts from U(-init_scale, init_scale) (0.1 small,
            0.05 medium, 0.04 large).
        fused: on TensorFlow, run the recurrence with the hand-written backward pass.

    Call arguments:
        inputs: ``[batch, time, input_dim]``.
        initial_state: ``(h, c)``, each ``[batch, units]``.

    Returns:
        ``(outputs [batch, time, units], (h_T, c_T))``.

    Example:

    ```python
    lstm = ZarembaLSTM(200, init_scale=0.1)
    outputs, (h, c) = lstm(x, (h0, c0))     # x: [20, 35, 200]; h0, c0: [20, 200]
    ```
    """

    def __init__(self, units: int, init_scale: float = 0.1, fused: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.init_scale = float(init_scale)
        self.fused = bool(fused)

    def build(self, input_shape):
        four = 4 * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], four),
                                      initializer=uniform(self.init_scale), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, four),
                                                initializer=uniform(self.init_scale),
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(four,), initializer=uniform(self.init_scale),
                                    name="bias")

    def call(self, inputs, initial_state):
        projected = ops.einsum("btd,dk->tbk", inputs, self.kernel) + self.bias   # x_t W + b
        recurrent_kernel = ops.convert_to_tensor(self.recurrent_kernel)
        initial_state = tuple(ops.cast(s, projected.dtype) for s in initial_state)
        if self.fused and keras.backend.backend() == "tensorflow":
            outputs, h, c = fused_lstm_recurrence(projected, *initial_state, recurrent_kernel)
            return ops.transpose(outputs, (1, 0, 2)), (h, c)

        def step(state, x_t):
            h, c = state
            i, f, o, g = ops.split(x_t + ops.matmul(h, recurrent_kernel), 4, axis=-1)
            c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)                  # memory cell
            h = ops.sigmoid(o) * ops.tanh(c)
            return (h, c), h

        final, outputs = time_major_loop(step, projected, initial_state)
        return ops.transpose(outputs, (1, 0, 2)), final

    def get_config(self):
        return {**super().get_config(), "units": self.units, "init_scale": self.init_scale,
                "fused": self.fused}


@keras.saving.register_keras_serializable(package="keras_papers")
class LanguageModel(keras.Model):
    """Zaremba et al.'s word-level LSTM language model (Sections 3.1-3.2, Section 4.1).

    ``tokens → embedding (n) → D → LSTM_1 → D → … → LSTM_L → D → softmax(h W_y + b_y)``, with
    ``D`` dropout of rate ``dropout`` (the non-recurrent connections only; the paper's small
    model has none). With ``tied=True`` the output layer is the transposed input embedding
    plus a bias, ``softmax(h Eᵀ + b_y)`` (Press & Wolf 2017; Inan et al. 2017), which needs the
    embedding size to equal ``units``, as it does here.

    The state of the ``L`` layers travels as one tensor ``[batch, L, 2, units]`` (``h`` then
    ``c`` of each layer), so a caller can carry it from one chunk of a text to the next
    (truncated backpropagation through time), reset it, or reorder it with beam hypotheses.

    Args:
        vocab_size: the softmax size (the vocabulary, ``<pad>`` included).
        units: the embedding and LSTM size ``n`` (200 small, 650 medium, 1500 large).
        num_layers: ``L`` (2 in the paper).
        dropout: the rate of every ``D`` (0, 0.5, 0.65).
        init_scale: every parameter starts from U(-init_scale, init_scale).
        tied: tie the output layer to the input embedding.
        carried_streams: the number of training streams whose state is carried from one
            training batch to the next, kept in the non-trainable variable
            :attr:`carried_state` ``[carried_streams, L, 2, units]`` so that a checkpoint of
            the model holds it (0: no such variable).

    Call arguments:
        inputs: ``{"tokens": int [batch, time], "state": [batch, L, 2, units]}``; without
            ``"state"`` every layer starts from zeros.
        training: apply dropout.

    Returns:
        ``{"logits": [batch, time, vocab_size], "state": [batch, L, 2, units]}``, the state
        after the last token.

    Example:

    ```python
    model = LanguageModel(10000, 200, init_scale=0.1)
    out = model({"tokens": tokens})                        # tokens: [20, 20]
    out = model({"tokens": next_tokens, "state": out["state"]})
    ```
    """

    def __init__(self, vocab_size: int, units: int, num_layers: int = 2, dropout: float = 0.0,
                 init_scale: float = 0.1, tied: bool = False, carried_streams: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.units, self.num_layers = int(vocab_size), int(units), \
            int(num_layers)
        self.dropout, self.init_scale, self.tied = float(dropout), float(init_scale), bool(tied)
        self.carried_streams = int(carried_streams)
        init = self.init_scale
        self.embedding = keras.layers.Embedding(self.vocab_size, self.units,
                                                embeddings_initializer=uniform(init),
                                                name="embedding")
        self.drops = [keras.layers.Dropout(self.dropout, name=f"dropout_{n}")
                      for n in range(self.num_layers + 1)]
        self.lstms = [ZarembaLSTM(self.units, init, name=f"lstm_{n + 1}")
                      for n in range(self.num_layers)]
        track_layers(self, self.lstms)  # in the checkpoint as lstm_1, lstm_2, ...
        if self.tied:
            self.output_bias = self.add_weight(shape=(self.vocab_size,), initializer=uniform(init),
                                               name="output_bias")
        else:
            self.softmax = keras.layers.Dense(self.vocab_size, kernel_initializer=uniform(init),
                                              bias_initializer=uniform(init), name="softmax")
        self.carried_state = None
        if self.carried_streams:
            # Written by the training step with the state after each batch; one value for
            # every replica (each replica writes the gathered state of all streams).
            self.carried_state = self.add_weight(
                shape=(self.carried_streams, self.num_layers, 2, self.units),
                initializer="zeros", trainable=False, name="carried_state",
                aggregation="only_first_replica")

    def zero_state(self, batch_size):
        """The state every stream starts from: zeros ``[batch, L, 2, units]``."""
        return ops.zeros((batch_size, self.num_layers, 2, self.units), self.compute_dtype)

    def call(self, inputs, training=False):
        tokens = inputs["tokens"]
        state = inputs.get("state")
        if state is None:
            state = self.zero_state(ops.shape(tokens)[0])
        state = ops.cast(state, self.compute_dtype)
        x = self.drops[0](self.embedding(tokens), training=training)
        states = []
        for n, lstm in enumerate(self.lstms):
            x, (h, c) = lstm(x, (state[:, n, 0], state[:, n, 1]))
            x = self.drops[n + 1](x, training=training)
            states.append(ops.stack([h, c], axis=1))
        if self.tied:
            logits = ops.matmul(x, ops.transpose(self.embedding.embeddings)) + self.output_bias
        else:
            logits = self.softmax(x)
        return {"logits": logits, "state": ops.stack(states, axis=1)}

    def step(self, tokens, state):
        """One step of generation: ``(logits [batch, vocab], state)`` after ``tokens [batch]``."""
        out = self({"tokens": ops.expand_dims(tokens, 1), "state": state}, training=False)
        return out["logits"][:, 0], out["state"]

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "units": self.units,
                "num_layers": self.num_layers, "dropout": self.dropout,
                "init_scale": self.init_scale, "tied": self.tied,
                "carried_streams": self.carried_streams}
