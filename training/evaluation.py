"""Evaluation: a task's per-example outputs over a whole split, and the final evaluation.

:func:`make_evaluator` runs a task's selection step (or its final step) over every batch of a
split on all replicas, gathers the outputs in the split's order (:mod:`training.distribute`) and
computes the metrics over the whole split. :func:`final_evaluation` is the last phase of a run:
the best checkpoint's weights on every split of ``task.eval_splits``, by the paper's protocol,
and the task's artefacts (heat maps, sample outputs).

Example:

```python
evaluate = make_evaluator(task, model, strategy, per_replica_batch=32)
metrics, outputs = evaluate("test", final=True)
```
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from datasets.batching import DataRequest
from training import distribute
from training.progress import Progress
from training.task import Task, eval_steps

Evaluator = Callable[..., tuple[dict[str, float], dict[str, np.ndarray]]]


def make_evaluator(task: Task, model: keras.Model, strategy: tf.distribute.Strategy, *,
                   per_replica_batch: int, seed: int = 0, static_shapes: bool = False,
                   verbose: bool = False) -> Evaluator:
    """Returns ``evaluate(split, final=False) -> (metrics, outputs)``.

    Runs the task's selection evaluation (or, with ``final``, its final evaluation) over every
    batch of the split on all replicas, gathers the per-example outputs in the split's order
    (see :mod:`training.task`) and computes the metrics over the whole split.

    With ``verbose``, a progress line counts the split's batches (with the rate and the time
    left): ``final evaluation on test (decoding): batch 12/32``.

    Each step is traced once, for the pipeline's element spec (batches are as long as their
    longest example: the lengths are left unknown), and a final evaluation that runs the
    selection step reuses the selection's traced function.
    """
    traced = {}

    def eval_fn(step, inputs, spec):
        key = (step.__func__, str(spec))
        if key not in traced:
            @tf.function(input_signature=[spec])
            def run(inputs):
                out = strategy.run(
                    lambda batch: distribute.pad_to_common_shape(step(batch, model)),
                    args=(inputs,))
                return {k: strategy.gather(v, axis=0) for k, v in out.items()}

            traced[key] = run
        return traced[key](inputs)

    def evaluate(split: str, final: bool = False
                 ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        step = task.final_eval_step if final and task.has_final_eval_step else task.eval_step
        compute = task.compute_final_metrics if final else task.compute_metrics
        request = DataRequest(split, batch_size=per_replica_batch, seed=seed,
                              static_shapes=static_shapes)
        batches = distribute.distributed_batches(strategy, task, request)
        bar = Progress(_batches(task, split, per_replica_batch * strategy.num_replicas_in_sync),
                       _phase(task, split, final) + ": batch", enabled=verbose, unit="batch",
                       announce=final, brief=not final)
        bar.update(0)
        chunks = []
        for batch in batches:
            chunks.append({k: v.numpy()
                           for k, v in eval_fn(step, batch, batches.element_spec).items()})
            bar.update(len(chunks))
        bar.close()
        outputs = distribute.concat_outputs(chunks)
        return compute(outputs, split), outputs

    return evaluate


def _phase(task: Task, split: str, final: bool) -> str:
    if not final:
        return f"evaluating on {split}"
    return f"final evaluation on {split}" + (" (decoding)" if task.has_final_eval_step else "")


def _batches(task: Task, split: str, global_batch: int) -> int | None:
    """The batches of an evaluation of ``split`` (``None`` where the task cannot say)."""
    try:
        return eval_steps(task.num_examples(split), global_batch)
    except NotImplementedError:
        return None


def final_evaluation(task: Task, model: keras.Model, evaluate: Evaluator, *, model_dir: str,
                     best_step: int | None, last_selection: tuple[int, dict] | None,
                     write_artifacts: bool) -> tuple[dict[str, dict], list[str]]:
    """The final evaluation of the best weights (already in ``model``) on every evaluation
    split; returns ``(metrics by split, artefact paths)``.

    When the task's final evaluation is its selection evaluation and the best weights are
    those the last selection evaluation ran on (``last_selection``: its step and gathered dev
    outputs; ``best_step``: the best checkpoint's), the dev outputs are reused rather than
    computed again. Artefacts are written only where ``write_artifacts`` (the chief).
    """
    reuse_dev = (last_selection is not None and best_step is not None
                 and not task.has_final_eval_step and last_selection[0] == best_step)
    metrics, artifacts = {}, []
    for split in task.eval_splits:
        if reuse_dev and split == "dev":
            outputs = last_selection[1]
            metrics[split] = task.compute_final_metrics(outputs, split)
        else:
            metrics[split], outputs = evaluate(split, final=True)
        if write_artifacts:
            artifacts += task.write_artifacts(model, split, outputs, model_dir)
    return metrics, artifacts
