"""Runs the toy experiment in its own process (for crash, lock and multi-worker tests).

Usage: python -m tests.run_toy MODEL_DIR STRATEGY [PARAMS_JSON] [CONFIG_JSON]

PARAMS_JSON overrides the toy's hyperparameters, CONFIG_JSON the ``RunConfig`` (defaults:
3 steps per loop, a checkpoint every 5 steps, quiet, the cache in MODEL_DIR_cache). Writes the
final weights to MODEL_DIR/weights_<worker>.npz. ``$TOY_SLOW_CHIEF_SAVES`` (seconds) delays
every checkpoint save of the chief. A user error (a preempted run) ends the process as it
ends ``train.py``: one line on standard error and its exit status.
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from tests.toy_task import SLOW_CHIEF_SAVES, TOY
from training import cli, loop, strategies


def main(model_dir: str, strategy_name: str, params: dict, config: dict) -> None:
    if strategy_name == "mirrored2":
        from training import strategies as s

        s.split_cpu(2)
        strategy = s.get_strategy("mirrored", num_cpu_devices=2)
    else:
        strategy = strategies.get_strategy(strategy_name)
    if os.environ.get(SLOW_CHIEF_SAVES) and strategies.is_chief(strategy):
        save = tf.train.CheckpointManager.save

        def slow_save(self, *args, **kwargs):
            time.sleep(float(os.environ[SLOW_CHIEF_SAVES]))
            return save(self, *args, **kwargs)

        tf.train.CheckpointManager.save = slow_save
    run = loop.RunConfig(**{"model_dir": model_dir, "steps_per_loop": 3, "checkpoint_every": 5,
                            "verbose": False, "cache_dir": model_dir + "_cache", **config})
    result = loop.train(TOY, TOY.params_with_overrides(params), run, strategy=strategy)
    if result.finished_before:  # a finished run re-run: its results only, no model
        return
    path = os.path.join(model_dir, f"weights_{strategies.worker_id(strategy)}.npz")
    np.savez(path, *result.model.get_weights())


if __name__ == "__main__":
    # A user error (a preempted run included) ends as train.py's does: one line, its status.
    sys.exit(cli.main_with_user_errors(lambda argv: main(
        argv[1], argv[2], json.loads(argv[3]) if len(argv) > 3 else {},
        json.loads(argv[4]) if len(argv) > 4 else {}))(sys.argv))
