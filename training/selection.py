"""Model selection: the best checkpoint by the dev metric, and early stopping.

After every selection evaluation, :meth:`Selection.update` compares the task's metric
(:attr:`training.task.Task.metric`, larger or smaller is better by ``metric_mode``) with the
best so far: a better value is recorded and its weights are saved as the best checkpoint;
otherwise one more evaluation without improvement is counted, and with ``patience`` that many
in a row the run stops early. The best value and the count are variables of the run's
checkpoint (:mod:`training.checkpoints`), so a resumed run judges as an uninterrupted one would,
and a run that had stopped early stays stopped.

No TensorFlow is imported here; the variables only need ``assign``, ``assign_add`` and
``numpy``.

Example:

```python
selection = Selection("accuracy", "max", patience=3, best_value=var_a,
                      evals_since_best=var_b, save_best=best_manager_save)
if selection.update(step, dev["accuracy"]):
    ...  # a new best checkpoint was written
selection.stopped  # True after 3 evaluations without a better accuracy
```
"""

from __future__ import annotations

import math
from typing import Any, Callable


def is_better(value: float, best: float, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (``nan``: nothing yet) in ``mode`` ("max" or "min")."""
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def _value(variable) -> Any:
    return variable.numpy().item()


class Selection:
    """The best checkpoint and early stopping (see the module docstring).

    Args:
        metric: the name of the selection metric.
        mode: "max" if a larger value is better, else "min".
        patience: evaluations without improvement before stopping (0: never).
        best_value: a float variable holding the best value so far (``nan``: none).
        evals_since_best: an integer variable counting evaluations since the best.
        save_best: writes the current weights as the best checkpoint of a step.
    """

    def __init__(self, metric: str, mode: str, patience: int, *, best_value,
                 evals_since_best, save_best: Callable[[int], None]):
        self.metric = metric
        self.mode = mode
        self.patience = patience
        self._best = best_value
        self._since = evals_since_best
        self._save_best = save_best

    @property
    def best(self) -> float:
        return _value(self._best)

    @property
    def stopped(self) -> bool:
        """Whether ``patience`` evaluations in a row brought no better metric."""
        return bool(self.patience and _value(self._since) >= self.patience)

    def update(self, step: int, value: float) -> bool:
        """Judges the metric of the evaluation at ``step``; returns whether it is the best."""
        if is_better(value, self.best, self.mode):
            self._best.assign(value)
            self._since.assign(0)
            self._save_best(step)
            return True
        self._since.assign_add(1)
        return False

    def best_entry(self, history: list[dict]) -> dict | None:
        """The history entry (one per evaluation) with the best dev metric, or ``None``."""
        if not history:
            return None
        sign = 1 if self.mode == "max" else -1
        return max(history, key=lambda h: h["dev"][self.metric] * sign)
