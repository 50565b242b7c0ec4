"""Checks of hyperparameter values, shared by the registry and the training loop.

Hyperparameters are the one source of truth for a run's settings (``papers/registry.py``); the
loop reads :data:`LOOP_PARAMS` from them. :func:`check_params` refuses values out of range by
name (a learning rate below 0, a dropout rate of 1 or more, a size below 1, ...) and any float
that is not finite, with one message listing every problem. No TensorFlow is imported here.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

#: The hyperparameters the training loop reads; every experiment has them.
LOOP_PARAMS = ("batch_size", "epochs", "train_steps", "clip_norm", "patience")
#: What each of :data:`LOOP_PARAMS` means (``train.py --describe``); a paper's
#: ``experiments.py`` adds the paper's value where it gives one.
LOOP_MEANINGS = {
    "batch_size": "global batch size: examples per step over all replicas",
    "epochs": "passes over the training data (when train_steps is 0)",
    "train_steps": "total training steps instead of epochs (0: train for `epochs`)",
    "clip_norm": "clip the global-batch gradient to this global norm (0: no clipping)",
    "patience": "early stopping: dev evaluations without a better dev metric (0: never stop)",
}

# (test, what a valid value is) by exact name, then by name suffix; tuples: every element.
_AT_LEAST_ONE = (lambda v: v >= 1, "at least 1")
_NON_NEGATIVE = (lambda v: v >= 0, "0 or more")
_PROBABILITY = (lambda v: 0 <= v < 1, "in [0, 1)")
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": _AT_LEAST_ONE, "epochs": _AT_LEAST_ONE,
    "train_steps": (lambda v: v >= 0, "0 (train for `epochs`) or more"),
    "clip_norm": (lambda v: v >= 0, "0 (no clipping) or more"),
    "patience": (lambda v: v >= 0, "0 (no early stopping) or more"),
    "momentum": _PROBABILITY, "hidden": _AT_LEAST_ONE, "k": _AT_LEAST_ONE,
    "max_length": _AT_LEAST_ONE, "max_seq_length": (lambda v: v >= 3, "at least 3"),
    "min_count": _AT_LEAST_ONE, "num_symbols": _AT_LEAST_ONE, "min_length": _AT_LEAST_ONE,
    "hidden_dims": _AT_LEAST_ONE,
    "beam_width": _AT_LEAST_ONE, "head_tokens": _NON_NEGATIVE, "units": _AT_LEAST_ONE,
    "max_words": _NON_NEGATIVE, "train_images": _NON_NEGATIVE,
    "warmup_proportion": (lambda v: 0 <= v <= 1, "in [0, 1]"),
}
_SUFFIX_RULES: tuple[tuple[str, tuple[Callable[[Any], bool], str]], ...] = (
    ("learning_rate", _NON_NEGATIVE), ("dropout", _PROBABILITY), ("_dim", _AT_LEAST_ONE),
    ("_units", _AT_LEAST_ONE), ("_size", _AT_LEAST_ONE), ("_examples", _NON_NEGATIVE),
    ("l2", _NON_NEGATIVE), ("weight_decay", _NON_NEGATIVE), ("epsilon", _NON_NEGATIVE),
    ("_penalty", _NON_NEGATIVE), ("_std", _NON_NEGATIVE), ("_weight", _NON_NEGATIVE),
)


def check_params(params: Mapping[str, Any], name: str) -> None:
    """Raises ``ValueError`` for a value out of its range, or a float that is not finite."""
    problems = []
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{key}={value} (must be a finite number)")
            continue
        rule = _RULES.get(key) or next((r for suffix, r in _SUFFIX_RULES
                                        if key.endswith(suffix)), None)
        if rule is None or isinstance(value, (bool, str)) or value is None:
            continue
        test, valid = rule
        items = value if isinstance(value, (tuple, list)) else (value,)
        if not all(isinstance(v, (int, float)) and test(v) for v in items):
            problems.append(f"{key}={value!r} (must be {valid})")
    if problems:
        raise ValueError(f"invalid hyperparameter(s) of {name}: " + "; ".join(problems))
