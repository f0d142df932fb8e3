"""The lifecycle state machine of one model (all versions sharing a ``modelName``).

Pure: nothing here reads the clock, talks to Kubernetes or raises on bad input. One module
per concern:

- :mod:`.stages`: stages and ranks, :class:`VersionView`, :class:`Event`, :class:`ModelPlan`,
  :func:`enter_stage` (the one way a status changes stage);
- :mod:`.annotations`: the retry and rollback annotations;
- :mod:`.promotion`: gates, one step toward ``targetStage``, at most one Production version;
- :mod:`.rollback`: the restore target, the rollback, completing a half-written one, its Events;
- :mod:`.status`: gates pending, health and the kstatus conditions of a version;
- :mod:`.snapshots`: :func:`apply_snapshot` folds one evaluated snapshot into a version;
- :mod:`.reconcile`: :func:`reconcile` runs the steps for every version of a model.

The names below are those ``controller/engine.py`` reaches as ``lifecycle.<name>``;
everything else imports from the module of its concern.
"""

from modelreg.core.lifecycle.reconcile import reconcile
from modelreg.core.lifecycle.rollback import fold_rollback_events, restore_target, rollback_events
from modelreg.core.lifecycle.snapshots import apply_snapshot
from modelreg.core.lifecycle.stages import Event, ModelPlan, RollbackOutcome, VersionView, later

__all__ = [
    "Event",
    "ModelPlan",
    "RollbackOutcome",
    "VersionView",
    "apply_snapshot",
    "fold_rollback_events",
    "later",
    "reconcile",
    "restore_target",
    "rollback_events",
]
