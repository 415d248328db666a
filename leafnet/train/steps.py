"""leafnet's own training and evaluation steps under ``strategy.run``, for the strategies
Keras 3's ``model.fit`` cannot drive.

Under ``tf.distribute.MultiWorkerMirroredStrategy``, Keras 3's ``fit`` fails on its first
step (``ValueError: Attempt to convert a value (PerReplica...)``, keras#20585). The step
itself is simple enough to own: each replica runs the model on its share of the global
batch, the loss is summed and divided by the *global* number of images (so R replicas of
B images give the gradient of one device with R x B), and the Keras optimizer all-reduces
the gradients before applying them (its ``apply_gradients`` does so in a replica context).
BatchNormalization, dropout, the augmentation layers, loss scaling (mixed_float16), EMA,
class weights and the leafnet optimizers (Ranger, Lookahead, layer-wise rates) behave as
under ``model.fit`` (tests/train/test_multiworker.py compares them in one process).

The logged ``loss`` and ``accuracy`` are what Keras logs: the epoch's mean of the batch
losses weighted by batch size (class weights inside each batch loss), and the plain
accuracy (Keras weights only ``weighted_metrics``).

The helpers at the end broadcast values from the chief (worker 0) to every replica with an
all-reduce in which only replica 0 contributes: resuming workers take the chief's run state
and weights this way, so only the chief needs the run folder.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import numpy as np


def _distribute(strategy, ds):
    import tensorflow as tf

    options = tf.data.Options()
    # Every worker builds the same pipeline (same files, same seeded order) and keeps its
    # slices of each global batch: the data a step sees do not depend on the cluster.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(ds.with_options(options))


class DistributedSteps:
    """Train and evaluate a compiled Keras model one epoch at a time under ``strategy``.

    Args:
        strategy: the ``tf.distribute`` strategy the model and its optimizer were built in.
        jit_compile: compile the steps with XLA.
    """

    def __init__(self, strategy, jit_compile: bool = False):
        self.strategy = strategy
        self.jit_compile = bool(jit_compile)
        self._train_fns: dict[int, Any] = {}
        self._eval_fns: dict[int, Any] = {}

    # -- steps
    def _weights_table(self, class_weight: dict[int, float] | None, num_classes: int):
        if not class_weight:
            return None
        return np.array([class_weight.get(i, 1.0) for i in range(num_classes)], dtype="float32")

    def _make_train_fn(self, model, loss_obj, weights):
        import tensorflow as tf

        strategy, optimizer = self.strategy, model.optimizer

        def replica_step(x, y):
            ctx = tf.distribute.get_replica_context()
            y = tf.cast(y, "float32")
            sw = tf.gather(weights, tf.argmax(y, axis=-1)) if weights is not None else tf.ones(tf.shape(y)[:1])
            n = tf.cast(tf.shape(y)[0], "float32")
            global_n = ctx.all_reduce("sum", n)
            with tf.GradientTape() as tape:
                pred = tf.cast(model(x, training=True), "float32")
                per_image = tf.cast(loss_obj.call(y, pred), "float32")
                loss = tf.reduce_sum(per_image * sw) / tf.maximum(global_n, 1.0)
                if model.losses:
                    loss += tf.add_n([tf.cast(v, "float32") for v in model.losses]) / strategy.num_replicas_in_sync
                scaled = optimizer.scale_loss(loss)
            variables = model.trainable_variables
            grads = tape.gradient(scaled, variables)
            optimizer.apply_gradients(zip(grads, variables))
            correct = tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(y, -1)), "float32")
            # summed over replicas: the batch loss x the global batch size (Keras' loss tracker weights by size)
            return loss * global_n, tf.reduce_sum(correct), n

        @tf.function(jit_compile=self.jit_compile)
        def train_fn(batch):
            out = strategy.run(replica_step, args=batch)
            return [strategy.reduce("sum", v, axis=None) for v in out]

        return train_fn

    def _make_eval_fn(self, model, loss_obj):
        import tensorflow as tf

        strategy = self.strategy

        def replica_step(x, y):
            y = tf.cast(y, "float32")
            pred = tf.cast(model(x, training=False), "float32")
            per_image = tf.cast(loss_obj.call(y, pred), "float32")
            correct = tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(y, -1)), "float32")
            return tf.reduce_sum(per_image), tf.reduce_sum(correct), tf.cast(tf.shape(y)[0], "float32")

        @tf.function(jit_compile=self.jit_compile)
        def eval_fn(batch):
            out = strategy.run(replica_step, args=batch)
            return [strategy.reduce("sum", v, axis=None) for v in out]

        return eval_fn

    def train_epoch(self, model, loss_obj, dataset, *, class_weight=None, callbacks=()) -> dict[str, float]:
        """One epoch over ``dataset`` (global batches of ``(images, one-hot labels)``).

        ``callbacks`` get ``on_epoch_begin``, ``on_train_batch_end`` with the running
        ``loss`` / ``accuracy`` (a callback may raise to stop), and ``on_epoch_end``.
        """
        import tensorflow as tf

        key = id(model.optimizer)
        if key not in self._train_fns:    # a new phase or stage compiles a new optimizer
            weights = self._weights_table(class_weight, int(model.output_shape[-1]))
            table = None if weights is None else tf.constant(weights)
            self._train_fns = {key: self._make_train_fn(model, loss_obj, table)}
        train_fn = self._train_fns[key]
        for cb in callbacks:
            cb.on_epoch_begin(0)
        loss_sum = correct = count = 0.0
        logs: dict[str, float] = {}
        for step, batch in enumerate(_distribute(self.strategy, dataset)):
            batch_loss, batch_correct, n = (float(v) for v in train_fn(batch))
            loss_sum, correct, count = loss_sum + batch_loss, correct + batch_correct, count + n
            logs = {"loss": loss_sum / max(count, 1.0), "accuracy": correct / max(count, 1.0)}
            for cb in callbacks:
                cb.on_train_batch_end(step, logs)
        model.optimizer.finalize_variable_values(model.trainable_variables)   # as model.fit ends (EMA)
        for cb in callbacks:
            cb.on_epoch_end(0, logs)
        return logs

    def evaluate(self, model, loss_obj, dataset) -> dict[str, float]:
        """Mean loss and accuracy over ``dataset``, every replica taking its share."""
        key = id(model)
        if key not in self._eval_fns:
            self._eval_fns[key] = self._make_eval_fn(model, loss_obj)
        eval_fn = self._eval_fns[key]
        loss_sum = correct = count = 0.0
        for batch in _distribute(self.strategy, dataset):
            batch_loss, batch_correct, n = (float(v) for v in eval_fn(batch))
            loss_sum, correct, count = loss_sum + batch_loss, correct + batch_correct, count + n
        if count == 0:
            return {"loss": math.nan, "accuracy": math.nan}
        return {"loss": loss_sum / count, "accuracy": correct / count}


# ------------------------------------------------------------------------------- chief -> all

def broadcast_arrays(strategy, arrays: list[np.ndarray], *, is_chief: bool) -> list[np.ndarray]:
    """The chief's ``arrays`` on every worker (the others pass arrays of the same shapes).

    An all-reduce sum in which only replica 0 (the chief's first device) contributes:
    adding zeros is exact, and the values travel as float64, exact for float32 and for
    integers below 2**53.
    """
    import tensorflow as tf

    if not arrays:
        return []
    shapes = [a.shape for a in arrays]
    values = [tf.constant(np.asarray(a, dtype="float64") if is_chief else np.zeros(a.shape, "float64"))
              for a in arrays]

    def fn():
        ctx = tf.distribute.get_replica_context()
        first = tf.equal(ctx.replica_id_in_sync_group, 0)
        return ctx.all_reduce("sum", [tf.where(first, v, tf.zeros_like(v)) for v in values])

    with _quiet_tf():
        out = strategy.run(fn)   # eagerly: a tf.function would retrace for every new set of shapes
    local = [strategy.experimental_local_results(v)[0] for v in out]
    return [np.asarray(v).reshape(s).astype(a.dtype) for v, s, a in zip(local, shapes, arrays)]


def broadcast_json(strategy, value: Any, *, is_chief: bool) -> Any:
    """The chief's JSON-able ``value`` on every worker (others pass anything)."""
    data = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8) if is_chief else np.zeros(0, np.uint8)
    (length,) = broadcast_arrays(strategy, [np.array([len(data)], dtype=np.int64)], is_chief=is_chief)
    buf = data if is_chief else np.zeros(int(length[0]), np.uint8)
    (buf,) = broadcast_arrays(strategy, [buf], is_chief=is_chief)
    return json.loads(buf.astype(np.uint8).tobytes().decode())


def broadcast_variables(strategy, variables, *, is_chief: bool) -> None:
    """Assign the chief's values of ``variables`` on every worker."""
    values = broadcast_arrays(strategy, [np.asarray(v) for v in variables], is_chief=is_chief)
    for v, a in zip(variables, values):
        v.assign(a)


def agree(strategy, flag: bool) -> int:
    """How many workers (replicas) pass ``flag`` true: every worker gets the same count."""
    import tensorflow as tf

    value = tf.constant(1.0 if flag else 0.0, dtype="float64")

    def fn():
        return tf.distribute.get_replica_context().all_reduce("sum", value)

    with _quiet_tf():
        return int(round(float(strategy.experimental_local_results(strategy.run(fn))[0])))


@contextlib.contextmanager
def _quiet_tf():
    """Without TensorFlow's warning that eager collectives are slow: these few are rare."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)
