"""Data-parallel training of the kit's Keras models across devices, on either backend.

    with data_parallel():                       # every local device (GPUs, or CPU devices)
        MatrixFactorization(...).fit(train)     # each batch split across the devices

* **JAX**: ``keras.distribution.DataParallel`` over ``jax.devices()``: the weights are replicated,
  each batch is sharded along its first axis, gradients are averaged by XLA's collectives. On a CPU,
  ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (set before JAX starts) gives two devices to
  try it with; the tests do that.
* **TensorFlow**: ``tf.distribute.MirroredStrategy``; the model is built, compiled and fitted inside
  its scope. On a CPU, :func:`split_cpu` makes two logical CPU devices (before TensorFlow starts).

Inside, the kit trains through Keras ``fit`` (the distribution and the strategy work there), not
its single-device compiled epoch loop. Every batch is split evenly: the batch size must be a multiple
of the device count, and each epoch drops its last ``len % devices`` samples (fewer than one per
device; the shuffle differs every epoch). Several machines: Keras 3's ``fit`` under TensorFlow's
``MultiWorkerMirroredStrategy`` fails (keras-team/keras#20585); on JAX, start one process per
machine running the same script, each calling :func:`initialize_processes` first with its own
process id, then train inside ``data_parallel()``, which spans all processes' devices.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ACTIVE: list[Any] = []  # the distribution (JAX) or strategy (TensorFlow) in force, innermost last


def active() -> Any | None:
    """The data-parallel setting in force (a Keras distribution or a tf.distribute strategy), or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def shards() -> int:
    """Into how many equal parts each batch is split (1 without data parallelism). Both backends need
    equal parts: JAX's sharding refuses others, MirroredStrategy failed adding the replicas' gradients
    of a last batch of odd size."""
    dist = active()
    if dist is None:
        return 1
    return int(dist.device_mesh.devices.size) if hasattr(dist, "device_mesh") else int(dist.num_replicas_in_sync)


def processes() -> tuple[int, int]:
    """(this process's index, number of processes): (0, 1) unless JAX runs multi-process."""
    import keras

    if keras.backend.backend() != "jax" or active() is None:
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


def fit_inputs(x, y, batch_size: int):
    """What this process feeds Keras ``fit``, and its batch size. Every batch splits evenly over the
    devices (the last ``len % devices`` samples of the epoch are dropped); with several JAX processes
    each feeds every ``n``-th sample of whole global batches (Keras assembles them from the parts)."""
    keep = len(x) - len(x) % shards()
    index, count = processes()
    if count == 1:
        return x[:keep], y[:keep], batch_size
    if batch_size % count:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {count} processes.")
    n = keep - keep % batch_size  # whole global batches only: every process steps in lockstep
    return x[index:n:count], y[index:n:count], batch_size // count


def check_batch(batch_size: int) -> None:
    """A clear error when a batch cannot be split evenly over the devices."""
    if batch_size % shards():
        raise ValueError(f"batch_size {batch_size} does not split evenly over {shards()} devices: use a multiple of {shards()}.")


def split_cpu(n: int = 2) -> None:
    """Make ``n`` logical CPU devices for TensorFlow (call before TensorFlow runs anything)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def devices() -> list[str]:
    """The devices :func:`data_parallel` uses by default on this backend."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    raise RuntimeError(f"data-parallel training needs the JAX or TensorFlow backend, not {keras.backend.backend()!r}.")


@contextmanager
def data_parallel(device_names: list[str] | None = None) -> Iterator[Any]:
    """Train data-parallel across ``device_names`` (default :func:`devices`) inside the block."""
    import keras

    names = device_names or devices()
    if keras.backend.backend() == "jax":
        previous = keras.distribution.distribution()
        dist = keras.distribution.DataParallel(devices=names)
        dist.auto_shard_dataset = False  # with several processes, each feeds its own share (fit_inputs)
        keras.distribution.set_distribution(dist)
        _ACTIVE.append(dist)
        try:
            yield dist
        finally:
            _ACTIVE.pop()
            keras.distribution.set_distribution(previous)
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(names)
        _ACTIVE.append(strategy)
        try:
            with strategy.scope():
                yield strategy
        finally:
            _ACTIVE.pop()


def initialize_processes(coordinator: str, num_processes: int, process_id: int, cpu: bool = False) -> None:
    """Join a multi-process JAX job (one process per machine or per GPU), before anything else uses JAX.

    Every process runs the same script with its own ``process_id`` (0 is the coordinator, whose
    ``host:port`` all of them are given); then ``data_parallel()`` spans all processes' devices and
    each process feeds its share of every batch (:func:`fit_inputs`). ``cpu=True`` selects the gloo
    collectives that CPU devices need (two processes on one machine, as the tests do).
    """
    import jax

    if cpu:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
