"""The processes of a multi-worker fit and what they agree on.

The chief claims the run folder, checks the data and writes the run; the other workers
follow its decisions and train beside it, writing nothing but a scratch folder (their
image cache). :class:`Cluster` is the lifecycle's ``peers`` (see
:class:`leafnet.train.lifecycle.Peers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from leafnet import console
from leafnet.errors import DataError, LeafnetError
from leafnet.runs import RunDir

if TYPE_CHECKING:
    from leafnet.config import Config
    from leafnet.data.prepare import SplitData


class Cluster:
    """This process's side of a multi-worker fit.

    Args:
        strategy: the ``MultiWorkerMirroredStrategy``.
        root: the run folder, as the command named it.
        verbose: the run's verbosity (what a worker says of its part).
    """

    def __init__(self, strategy, root: Path, verbose: int):
        from leafnet.train.distribute import is_chief

        self.strategy, self.root, self.verbose = strategy, root, verbose
        self.writes = is_chief(strategy)   # the chief writes the run folder

    @property
    def name(self) -> str:
        """This task, e.g. ``worker 1``."""
        from leafnet.train.distribute import task_name

        return task_name(self.strategy)

    def tell(self, status: dict) -> None:
        """The chief's ``status`` to every worker."""
        from leafnet.train.steps import broadcast_json

        broadcast_json(self.strategy, status, is_chief=True)

    def refused(self, error: LeafnetError) -> None:
        """The chief cannot take the run: the workers stop with its reason."""
        self.tell({"error": str(error)})

    def claim(self, claim: Callable[[], tuple[bool, bool]]) -> tuple[bool, bool]:
        """``(resuming, complete)``: the chief's ``claim()``, received by every worker (a
        worker resumes nothing of its own)."""
        if self.writes:
            try:
                resuming, complete = claim()
            except LeafnetError as e:
                self.refused(e)
                raise
            self.tell({"done": bool(complete)})
            return resuming, complete
        from leafnet.train.steps import broadcast_json

        if self.verbose:
            console.info(f"{self.name}: training with the chief; the chief writes {self.root}")
        status = broadcast_json(self.strategy, None, is_chief=False)
        if status.get("error"):
            raise LeafnetError(f"the chief refused the run: {status['error']}")
        if status.get("done") and self.verbose:
            console.info(f"{self.name}: the run in {self.root} is already complete; nothing to do")
        return False, bool(status.get("done"))

    def same_data(self, split: SplitData) -> None:
        """Refuse, on every worker at once, a cluster whose workers see different data."""
        from leafnet.data.prepare import split_fingerprint
        from leafnet.train.steps import agree, broadcast_json

        mine = split_fingerprint(split)
        theirs = broadcast_json(self.strategy, mine, is_chief=self.writes)
        if agree(self.strategy, mine != theirs):
            raise DataError("the workers of the cluster do not see the same data (file list, classes or split differ "
                            "from the chief's): every worker needs the same --data folder at the same path")

    def steps(self, cfg: Config):
        """The distributed train and evaluation steps every worker runs."""
        from leafnet.train.steps import DistributedSteps

        return DistributedSteps(self.strategy, jit_compile=cfg.run.jit_compile)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[RunDir]:
        """A worker's folder for the block, removed at the end. One per (run folder, task): a
        worker killed with SIGKILL leaves it behind, and its restart takes it over."""
        key = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12]
        scratch = RunDir(Path(tempfile.gettempdir()) / f"leafnet-worker-{key}-{self.name.replace(' ', '')}")
        shutil.rmtree(scratch.root, ignore_errors=True)
        try:
            scratch.create()
            yield scratch
        finally:
            shutil.rmtree(scratch.root, ignore_errors=True)

    def done(self) -> None:
        """A worker's last line."""
        if self.verbose:
            console.info(f"{self.name}: done; the run folder is the chief's, {self.root}")


@contextlib.contextmanager
def cluster_errors() -> Iterator[None]:
    """A worker that stops (killed, or refused) makes the collectives of the others fail
    with UnavailableError about 10 s later: one line instead of a page of gRPC."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError) as e:
        first = next((line for line in str(e).splitlines() if "unhealthy" in line or "aborted" in line.lower()),
                     str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise LeafnetError(f"the cluster stopped: another worker is gone ({first.strip()[:200]}); run the same "
                           "command on every worker again: training resumes from the chief's last finished epoch") \
            from None
