"""Hyperparameter selection on dev: every point of a paper's grid, or a keras-tuner search.

A paper's grid lives in its package and is registered with its experiments
(``Experiment.grid``, e.g. Devlin et al.'s Appendix A.3 grid in
``papers/devlin2019/experiments.py``). :func:`grid_runs` yields one parameter dict per point,
which the training CLI runs through the shared loop; :func:`select_best` picks the run with the
best dev metric. :func:`search` instead asks a keras-tuner oracle (random search or Bayesian
optimisation) for up to ``max_trials`` points of the grid and reports each trial's dev metric
back; it takes ``run_fn(params) -> dev_metric`` so it does not depend on the training loop.

Example:

```python
for name, params in grid_runs(exp.hparams, exp.grid):
    ...   # train with params, record the dev metric
best = search("bayesian", max_trials=6, run_fn=lambda p: train_and_eval(p),
              grid=exp.grid, base_params=exp.hparams)
best.params, best.value
```
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tempfile
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

ORACLES = ("random", "bayesian")


_SHORT = {"learning_rate": "lr", "batch_size": "bs", "epochs": "ep", "dropout": "do"}


def run_name(point: Mapping[str, Any]) -> str:
    """A short, filesystem-safe name of a grid point, e.g. ``lr3e-05_bs32_ep3``."""
    short = _SHORT
    parts = []
    for key, value in point.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{short.get(key, key)}{text}")
    return "_".join(parts)


def grid_runs(base_params: Mapping[str, Any], grid: Mapping[str, Sequence]
              ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields ``(run_name, params)`` for every point of ``grid`` over ``base_params``.

    The order is the product of the grid's values in the order written (the first key
    slowest). Every grid key must be a hyperparameter of ``base_params``.
    """
    unknown = [k for k in grid if k not in base_params]
    if unknown:
        raise ValueError(f"grid keys {unknown} are not hyperparameters; valid: "
                         f"{', '.join(sorted(base_params))}")
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        yield run_name(point), {**base_params, **point}


def select_best(results: Iterable[tuple[Mapping[str, Any], float]], mode: str = "max"
                ) -> tuple[dict[str, Any], float]:
    """The ``(params, dev_metric)`` with the best finite metric (first one on ties)."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    best = None
    for params, value in results:
        if value is None or not math.isfinite(value):
            continue
        if best is None or (value > best[1] if mode == "max" else value < best[1]):
            best = (dict(params), float(value))
    if best is None:
        raise ValueError("no run has a finite dev metric")
    return best


# ------------------------------------------------------------------------------ keras-tuner
def search_space(grid: Mapping[str, Sequence], *, continuous_lr: bool = False):
    """A ``keras_tuner.HyperParameters`` space over ``grid``.

    Each key becomes a ``Choice`` of its values; with ``continuous_lr`` the learning rate is
    instead a log-uniform ``Float`` between the grid's smallest and largest value.
    """
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for key, values in grid.items():
        if key == "learning_rate" and continuous_lr:
            hp.Float(key, min(values), max(values), sampling="log")
        else:
            hp.Choice(key, list(values), ordered=True)
    return hp


@dataclasses.dataclass
class SearchResult:
    """The outcome of :func:`search`.

    Args:
        params: the best trial's full hyperparameters.
        value: its dev metric.
        trials: ``(params, value)`` of every trial in the order run (``value`` is NaN for a
            failed trial).
    """

    params: dict[str, Any]
    value: float
    trials: list[tuple[dict[str, Any], float]]


def search(oracle_kind: str, max_trials: int, run_fn: Callable[[dict[str, Any]], float], *,
           grid: Mapping[str, Sequence] | None = None,
           base_params: Mapping[str, Any] | None = None, space=None,
           metric: str = "dev_metric", mode: str = "max", seed: int = 0,
           directory: str | None = None, project_name: str = "search",
           verbose: bool = False) -> SearchResult:
    """Random or Bayesian search over a hyperparameter grid with keras-tuner's oracles.

    Args:
        oracle_kind: ``"random"`` (``RandomSearchOracle``) or ``"bayesian"``
            (``BayesianOptimizationOracle``, a Gaussian process with UCB).
        max_trials: the number of trials (distinct points; a random oracle stops early once
            it has seen every point of the grid).
        run_fn: trains with the given full parameter dict and returns the dev metric. An
            exception marks the trial failed (keras-tuner stops after 3 failures in a row).
        grid: the values of each searched hyperparameter (for :func:`search_space`).
        base_params: the experiment's defaults; trial values override them.
        space: a ``keras_tuner.HyperParameters``; default :func:`search_space` of ``grid``.
        metric, mode: the objective's name and direction.
        seed: the oracle's seed.
        directory, project_name: where the oracle keeps its trial records (default a
            temporary folder).
        verbose: print keras-tuner's per-trial summary.

    Returns:
        A :class:`SearchResult`.
    """
    import keras_tuner

    if oracle_kind not in ORACLES:
        raise ValueError(f"unknown oracle {oracle_kind!r}; valid: {', '.join(ORACLES)}")
    if max_trials < 1:
        raise ValueError(f"max_trials must be at least 1, got {max_trials}")
    if space is None:
        if grid is None:
            raise ValueError("pass grid or space")
        space = search_space(grid)
    objective = keras_tuner.Objective(metric, direction=mode)
    kinds = {"random": keras_tuner.oracles.RandomSearchOracle,
             "bayesian": keras_tuner.oracles.BayesianOptimizationOracle}
    if oracle_kind == "bayesian":
        try:
            import scipy  # noqa: F401  (keras-tuner's Gaussian process needs both)
            import sklearn  # noqa: F401
        except ImportError:
            raise ImportError("Bayesian search needs scipy and scikit-learn: "
                              "pip install scipy scikit-learn") from None
    oracle = kinds[oracle_kind](objective=objective, max_trials=max_trials, seed=seed,
                                hyperparameters=space)
    oracle.verbose = int(verbose)
    oracle._set_project_dir(directory or tempfile.mkdtemp(prefix="kt_"), project_name)
    base = dict(base_params or {})
    unknown = [hp.name for hp in space.space if base_params is not None and hp.name not in base]
    if unknown:
        raise ValueError(f"search space names {unknown} are not hyperparameters; valid: "
                         f"{', '.join(sorted(base))}")

    trials: list[tuple[dict[str, Any], float]] = []
    for _ in range(max_trials):
        trial = oracle.create_trial("chief")
        if trial.status != keras_tuner.engine.trial.TrialStatus.RUNNING:
            break
        params = {**base, **trial.hyperparameters.values}
        try:
            value = float(run_fn(params))
        except Exception as e:  # the trial failed; keras-tuner counts consecutive failures
            trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
            trial.message = f"{type(e).__name__}: {e}"
            trials.append((params, float("nan")))
            oracle.end_trial(trial)
            continue
        oracle.update_trial(trial.trial_id, {metric: value})
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        trials.append((params, value))
    best_params, best_value = select_best(trials, mode)
    return SearchResult(best_params, best_value, trials)
