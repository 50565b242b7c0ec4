"""Runs the toy experiment in its own process (for crash and multi-worker tests).

Usage: python -m tests.run_toy MODEL_DIR STRATEGY KILL_AT_EXAMPLE DROPOUT
Writes the final weights to MODEL_DIR/weights_<worker>.npz.
"""

import os
import sys

import numpy as np

from tests.toy_task import TOY
from training import loop, strategies


def main(model_dir: str, strategy_name: str, kill_at: int, dropout: float) -> None:
    strategy = strategies.get_strategy(strategy_name)
    params = dict(TOY.hparams, dropout=dropout, kill_at_example=kill_at)
    config = loop.RunConfig(model_dir=model_dir, steps_per_loop=3, checkpoint_every=5, epochs=3,
                            verbose=False)
    result = loop.train(TOY, params, config, strategy=strategy)
    path = os.path.join(model_dir, f"weights_{strategies.worker_id(strategy)}.npz")
    np.savez(path, *result.model.get_weights())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
