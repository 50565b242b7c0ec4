"""Keeps Grappler from rewriting gradient sums into temporary variables, which crashes training.

Grappler's memory optimizer has a "scheduling" pass: when its static estimate of a graph's peak
memory exceeds 80 % of the device's memory (on a CPU, the RAM that is *free* when the function is
traced, page cache not counted), it rewrites every ``AddN`` with more than two inputs that is live
at the peak into a ``TemporaryVariable`` that the inputs are added into one by one. Inside the
gradient of a ``while`` loop (a recurrent decoder's backward pass) a step can find the temporary
variable of the same loop iteration of an earlier step still there (eager function calls share
one per-step container), and fails with::

    AlreadyExistsError: Resource __per_step_0/.../while_grad/.../AddN_6/tmp_var/frame:.../iter:7

(tensorflow/tensorflow#25540, #23780, #37740). Whether it happens depends on the free memory at
that moment, not on the code: ``xu2015/flickr8k_gru`` failed this way within its first 30 steps
on a machine with 15 GB free.

:func:`disable_addn_scheduling` sets the memory optimizer to ``SWAPPING_HEURISTICS``: the
default's other heuristic (swapping GPU tensors to the host) stays, and only the scheduling pass
is off. It changes no result where the pass did not fire (an ``AddN`` and the sum of its inputs
in order by ``AssignAdd`` may differ in the last bit). ``tf.config`` has no public switch for this
option, so it is set on the eager context's ``ConfigProto``, which every later function call
reads.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow.python.eager import context

#: The memory optimizer's level: the default's swapping heuristic without its scheduling pass.
MEMORY_OPTIMIZATION = rewriter_config_pb2.RewriterConfig.SWAPPING_HEURISTICS


def disable_addn_scheduling() -> None:
    """Turns Grappler's ``AddN`` scheduling off for every function traced or called after it."""
    ctx = context.context()
    config = config_pb2.ConfigProto()
    if ctx._config is not None:  # no public setter; see the module docstring
        config.CopyFrom(ctx._config)
    config.graph_options.rewrite_options.memory_optimization = MEMORY_OPTIMIZATION
    ctx._config = config
    # Function calls cache their options per thread; setting any optimizer option drops them.
    tf.config.optimizer.set_experimental_options({})
