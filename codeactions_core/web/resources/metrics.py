"""``/metrics``: Prometheus text exposition of the whole server."""

from __future__ import annotations

import falcon

from codeactions_core.metrics import Metrics
from codeactions_core.services.access import AccessService
from codeactions_core.web.middleware import PUBLIC


class MetricsExposition:
    """Open without auth; else the metrics token, the service token or an internal user."""

    auth = PUBLIC  # checked here: the metrics token is no identity the providers know

    def __init__(self, metrics: Metrics, access: AccessService) -> None:
        self._metrics = metrics
        self._access = access

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._access.require_metrics({name.lower(): value for name, value in req.headers.items()})
        resp.data, resp.content_type = self._metrics.render()
