"""The experiment registry: one entry per paper table row.

An experiment is named ``paper/row`` (for example ``baselines/sst2_bow_logreg`` or
``cho2014/sst2_gru``). Each paper package defines its rows in ``papers/<paper>/experiments.py``
with :func:`register`; :func:`load_all` imports every such module, so ``train.py --list`` and
``evaluate.py --table`` see all of them.

Example:

```python
from papers import registry
exp = registry.get("baselines/sst2_bow_logreg")
params = exp.params_with_overrides("learning_rate=0.1,l2=1e-4")
```
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Mapping


@dataclasses.dataclass(frozen=True)
class Reported:
    """A number a paper (or a course) reports for one table row.

    Args:
        value: the number as printed, in percent where the paper uses percent.
        split: "dev" or "test" — which split the paper measured on.
        source: where it is printed, e.g. "Tai et al. 2015, Table 2".
        metric: the metric name, defaults to the experiment's metric.
        note: what differs from our setting (model size, data, embeddings).
    """

    value: float
    split: str
    source: str
    metric: str | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One registered experiment (a table row).

    Args:
        name: ``paper/row``.
        task: a :class:`training.task.Task` subclass; called as ``task(params, data_dir, model_dir)``.
        dataset: the dataset name passed to ``datasets.load``.
        metric: the main dev metric; early stopping and the best checkpoint follow it.
        hparams: default hyperparameters; ``--params`` overrides them by name, with their types.
        reported: the paper's numbers for this row.
        description: one line for ``--list``.
    """

    name: str
    task: Callable[..., Any]
    dataset: str
    metric: str
    hparams: Mapping[str, Any]
    reported: tuple[Reported, ...] = ()
    description: str = ""

    @property
    def paper(self) -> str:
        return self.name.split("/", 1)[0]

    def params_with_overrides(self, overrides: str | Mapping[str, Any] | None) -> dict:
        """Returns the hyperparameters with ``overrides`` applied.

        ``overrides`` is ``"k=v,k2=v2"`` or a mapping. Values are cast to the type of the
        default (bool accepts true/false/1/0; tuples are written ``a:b:c``). An unknown name or a
        value that does not parse raises ``ValueError`` naming the valid keys.
        """
        params = dict(self.hparams)
        if not overrides:
            return params
        if isinstance(overrides, str):
            items = []
            for part in overrides.split(","):
                part = part.strip()
                if not part:
                    continue
                if "=" not in part:
                    raise ValueError(
                        f"bad --params entry {part!r} for {self.name}: expected key=value; "
                        f"valid keys: {', '.join(sorted(params))}")
                key, value = part.split("=", 1)
                items.append((key.strip(), value.strip()))
        else:
            items = list(overrides.items())
        for key, value in items:
            if key not in params:
                raise ValueError(
                    f"unknown hyperparameter {key!r} for {self.name}; "
                    f"valid keys: {', '.join(sorted(params))}")
            params[key] = _cast_like(params[key], value, key, self.name)
        return params


def _cast_like(default: Any, value: Any, key: str, name: str) -> Any:
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)  # a tuple read back from JSON
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            low = value.lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            kind = type(default[0]) if default else str
            return tuple(kind(v) for v in value.split(":") if v)
        if default is None:
            return value
        return type(default)(value)
    except ValueError:
        raise ValueError(
            f"hyperparameter {key}={value!r} of {name} does not parse as "
            f"{type(default).__name__} (default {default!r})") from None


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    if experiment.name in _REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    if experiment.name.count("/") != 1:
        raise ValueError(f"experiment name {experiment.name!r} must be 'paper/row'")
    _REGISTRY[experiment.name] = experiment
    return experiment


def load_all() -> dict[str, Experiment]:
    """Imports ``papers.<paper>.experiments`` for every paper package."""
    import papers

    for info in pkgutil.iter_modules(papers.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"papers.{info.name}.experiments")
            except ModuleNotFoundError as e:
                if e.name != f"papers.{info.name}.experiments":
                    raise
    return dict(_REGISTRY)


def get(name: str) -> Experiment:
    experiments = load_all()
    if name not in experiments:
        raise ValueError(
            f"unknown experiment {name!r}; registered experiments:\n  "
            + "\n  ".join(sorted(experiments)))
    return experiments[name]


def by_paper(paper: str) -> list[Experiment]:
    experiments = load_all()
    rows = [e for e in experiments.values() if e.paper == paper]
    if not rows:
        papers_known = sorted({e.paper for e in experiments.values()})
        raise ValueError(f"unknown paper {paper!r}; papers: {', '.join(papers_known)}")
    return sorted(rows, key=lambda e: e.name)
