"""The operator's side of PocketBizz (issue 11.2-3): daily activity, business metrics at
/functions/v1/admin/*, business gauges on /metrics, and the operator dashboard at /admin/.

`routes.py` (HTTP), `service.py` (who is an operator, validation, system health),
`repository.py` (SQL), `activity.py` (the per-day activity recorder), `runtime.py` (start/stop).
"""

from pocketbizz.ops.runtime import shutdown, startup

__all__ = ["shutdown", "startup"]
