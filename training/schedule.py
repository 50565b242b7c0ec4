"""When a run trains, evaluates, checkpoints and stops: plain arithmetic on step counts.

A run is cut into calls of the training function (:func:`training.distribute.make_train_loop`),
each taking up to ``steps_per_loop`` steps. A call also ends where an evaluation or a
checkpoint is due, or where the run ends, so no step is taken past one of them; a call that
returns fewer steps than asked for has reached the end of the epoch's data.

- The run ends after ``train_steps`` steps, or (``train_steps`` 0) after ``epochs`` epochs.
- The selection evaluation runs every ``eval_every`` steps, or (``eval_every`` 0) at the end of
  every epoch, and always at the end of the run; never twice at one step.
- A checkpoint is written at every evaluation, at the end of every epoch, and every
  ``checkpoint_every`` steps (0: no others).

No TensorFlow is imported here.

Example:

```python
schedule = Schedule(steps_per_epoch=16, epochs=3, train_steps=0, eval_every=4,
                    checkpoint_every=0, steps_per_loop=20)
schedule.next_call(step=6)            # 2: the evaluation at step 8 is due first
schedule.evaluates(step=8, done=2, epoch_done=False, epoch=0)   # True
```
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The step arithmetic of one run (see the module docstring).

    Args:
        steps_per_epoch: training steps in one epoch.
        epochs: epochs to train (when ``train_steps`` is 0).
        train_steps: total steps (0: ``epochs`` decide).
        eval_every: steps between selection evaluations (0: at each epoch's end).
        checkpoint_every: steps between extra checkpoints (0: none).
        steps_per_loop: most steps one call of the training function takes.
    """

    steps_per_epoch: int
    epochs: int
    train_steps: int = 0
    eval_every: int = 0
    checkpoint_every: int = 0
    steps_per_loop: int = 1

    @property
    def total_steps(self) -> int:
        """The run's length in steps (the horizon of learning-rate schedules)."""
        return self.train_steps or self.epochs * self.steps_per_epoch

    def finished(self, step: int, epoch: int) -> bool:
        """Whether the run is over at ``step``, in (0-based) ``epoch``."""
        return step >= self.train_steps if self.train_steps else epoch >= self.epochs

    def epoch_target(self, step: int, in_epoch: int) -> int:
        """Where this epoch's training stops: its last step, or the run's if that is sooner."""
        if self.train_steps:
            return min(self.steps_per_epoch, in_epoch + self.train_steps - step)
        return self.steps_per_epoch

    def next_call(self, step: int) -> int:
        """Steps to ask of the next call: stop at the run's end and at the next evaluation or
        checkpoint."""
        limits = [self.steps_per_loop]
        if self.train_steps:
            limits.append(self.train_steps - step)
        for every in (self.eval_every, self.checkpoint_every):
            if every:
                limits.append((step // every + 1) * every - step)
        return min(limits)

    def evaluates(self, step: int, done: int, epoch_done: bool, epoch: int) -> bool:
        """Whether the selection evaluation is due after a call that took ``done`` steps and
        left the run at ``step``, in ``epoch`` (already advanced if ``epoch_done``)."""
        if self.eval_every:
            due = bool(done) and step % self.eval_every == 0
        else:
            due = epoch_done
        return due or self.finished(step, epoch)

    def checkpoints(self, step: int, done: int, epoch_done: bool) -> bool:
        """Whether a checkpoint is due after a call (when no evaluation writes one)."""
        return epoch_done or bool(self.checkpoint_every and done and
                                  step % self.checkpoint_every == 0)
