"""The OpenAPI 3.1 description of the API: one place for every core route.

``CORE_PATHS`` maps each route template to its operations, gathered from one
module per group of routes (``codes``, ``runs``, ``flows``...), built with the
helpers of ``builders`` on the component schemas of ``schemas``. A plugin that
adds routes (``codeactions_add_routes``) describes them with an ``openapi``
attribute on its resource: ``{"get": {operation}, ...}`` (an OpenAPI
operation object per method; ``#/components/schemas/Error`` is the error shape).
:func:`build_document` walks the Falcon router, so the served document holds
exactly the routes the app has; ``tests/test_openapi.py`` fails on any route
missing from one side.
"""

from codeactions_core.web.openapi.document import (
    CORE_PATHS,
    build_document,
    undocumented,
    unrouted,
)

__all__ = ["CORE_PATHS", "build_document", "undocumented", "unrouted"]
