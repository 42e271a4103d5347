"""Where the work runs: in this process or on a Ray cluster, behind one interface.

Fingerprinting and charting split their work into independent tasks (a batch of models, a
family) and hand them to an :class:`~modelatlas.engine.executor.Executor`: the in-process one by
default, :class:`~modelatlas.engine.executor.RayExecutor` with ``--engine ray`` (Ray's own tasks,
retries and object store; no scheduler of ours). Both run the same task functions, so their
results are the same byte for byte (``docs/scale.md``).
"""

from modelatlas.engine.executor import Executor, LocalExecutor, RayExecutor, TaskFailure, open_executor

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "TaskFailure", "open_executor"]
