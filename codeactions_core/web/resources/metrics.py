"""``/metrics``: Prometheus text exposition of the whole server."""

from __future__ import annotations

import falcon

from codeactions_core.metrics import Metrics
from codeactions_core.web.middleware import PUBLIC


class MetricsExposition:
    auth = PUBLIC

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data, resp.content_type = self._metrics.render()
