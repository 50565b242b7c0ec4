"""Choosing a ``tf.distribute`` strategy from a flag value.

The names follow the TensorFlow Model Garden's ``distribute_utils.get_distribution_strategy``:

- ``default``: no distribution (``tf.distribute.get_strategy()``).
- ``one_device``: everything on one device (the first GPU, else the CPU).
- ``mirrored``: synchronous data parallelism over the local GPUs; with ``num_cpu_devices > 1``
  and no GPU, over that many logical CPU devices (real replicas on one machine, for tests).
- ``multi_worker_mirrored``: synchronous data parallelism over the workers named in ``TF_CONFIG``.
- ``tpu``: a Cloud TPU (``tpu`` is its name or grpc address, or ``local`` on a TPU VM / Colab);
  connecting gives up with a message after ``timeout`` seconds.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import tensorflow as tf

from training.settings import STRATEGIES


def split_cpu(num_devices: int) -> None:
    """Splits the physical CPU into ``num_devices`` logical devices (before TF initialises)."""
    if num_devices <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    existing = tf.config.get_logical_device_configuration(cpus[0])
    if existing and len(existing) == num_devices:
        return
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def get_strategy(name: str = "default", *, tpu: str | None = None,
                 num_cpu_devices: int = 1, timeout: float = 120.0) -> tf.distribute.Strategy:
    """Returns the strategy called ``name`` (see the module docstring)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown --strategy={name!r}; valid: {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        split_cpu(num_cpu_devices)
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        # One CPU replica needs no cross-device ops; several need the ring-free reduction.
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker_mirrored needs TF_CONFIG naming the workers")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING))
    if not tpu:
        raise ValueError("--strategy=tpu needs --tpu=ADDRESS (or --tpu=local on a TPU VM/Colab)")
    return _connect_tpu(tpu, timeout)


def _connect_tpu(tpu: str, timeout: float) -> tf.distribute.Strategy:
    """Connects to a TPU, failing with a message rather than hanging when none answers.

    ``timeout`` bounds the whole of connecting. A ``grpc://host:port`` address is probed first
    (:func:`_probe_grpc`): a refused port, one that accepts and never answers, or one that
    answers but not as a gRPC server fails there, within the time left. The connection and the
    TPU system's initialisation then run in a thread that is given the rest of it.
    """
    deadline = time.monotonic() + timeout
    if tpu.startswith("grpc://"):
        _probe_grpc(tpu, timeout, deadline)
    outcome: dict = {}

    def connect():
        try:
            # "local" is TensorFlow's own name for a TPU attached to this VM.
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            outcome["strategy"] = tf.distribute.TPUStrategy(resolver)
        except Exception as e:  # reported below, in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise TimeoutError(f"could not connect to the TPU {tpu!r} within {timeout:g} s "
                           "(--tpu_timeout); is the TPU running and reachable?")
    if "error" in outcome:
        raise ConnectionError(f"could not connect to the TPU {tpu!r}: {outcome['error']}")
    return outcome["strategy"]


#: The HTTP/2 connection preface and an empty SETTINGS frame: every gRPC server answers them
#: with a SETTINGS frame of its own (RFC 9113 §3.4).
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _probe_grpc(tpu: str, timeout: float, deadline: float) -> None:
    """Raises ``ConnectionError`` or ``TimeoutError`` unless a gRPC server answers at ``tpu``
    (``grpc://host:port``) before ``deadline`` (``time.monotonic()``), the TCP connection
    included; ``timeout`` is named in the message."""
    host, _, port = tpu[len("grpc://"):].rpartition(":")
    try:
        with socket.create_connection((host, int(port)),
                                      timeout=max(0.01, deadline - time.monotonic())
                                      ) as connection:
            connection.settimeout(max(0.01, deadline - time.monotonic()))
            connection.sendall(_HTTP2_HELLO)
            reply = connection.recv(9)  # a frame header: length (3), type (1), flags, stream
    except (socket.timeout, TimeoutError):
        raise TimeoutError(f"nothing at {tpu} answered as a TPU's gRPC server within "
                           f"{timeout:g} s (--tpu_timeout); check --tpu") from None
    except (OSError, ValueError) as e:
        raise ConnectionError(f"no TPU answers at {tpu} ({e}); check --tpu") from None
    if len(reply) < 4 or reply[3] != 4:
        raise ConnectionError(f"the server at {tpu} is not a gRPC server (it did not answer "
                              "HTTP/2); check --tpu")


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every worker has called it (an all-reduce); immediate in one process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return
    strategy.reduce(tf.distribute.ReduceOp.SUM,
                    strategy.run(lambda: tf.constant(1.0)), axis=None)


def any_worker(strategy: tf.distribute.Strategy, flag: bool) -> bool:
    """Whether ``flag`` is true on any worker (an all-reduce; ``flag`` itself in one
    process). Every worker must call it at the same point."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return flag
    total = strategy.reduce(tf.distribute.ReduceOp.SUM,
                            strategy.run(lambda: tf.constant(float(flag))), axis=None)
    return float(total) > 0


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return (resolver.task_type == "chief" or
            (resolver.task_type == "worker" and resolver.task_id == 0))


def worker_id(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.task_type else 0
