"""``/action/endpoint``'s answer: the response the code shaped (status, content type,
headers, a text or binary body), as its run recorded it."""

from __future__ import annotations

import base64
import binascii

import falcon

from codeactions_core.execution.response import header_problem, media_type
from codeactions_core.model import CodeRun


def answer_with_run(resp: falcon.Response, run: CodeRun) -> None:
    """Answer with what the completed ``run`` set. Headers are checked again here: only
    what is valid HTTP and not the server's own (hop-by-hop, framing) is sent."""
    extra = run.extra
    resp.status = falcon.code_to_http_status(extra.get("status_code", 200))
    resp.content_type = media_type(extra.get("content_type"))
    headers = extra.get("headers")
    for name, values in headers.items() if isinstance(headers, dict) else ():
        sent = False
        for value in values if isinstance(values, list) else [values]:
            if header_problem(str(name), str(value)) is not None:
                continue
            if sent or str(name).lower() == "set-cookie":  # one line per cookie
                resp.append_header(str(name), str(value))
            else:
                resp.set_header(str(name), str(value))  # replaces a header the server set
                sent = True
    if extra.get("result_encoding") == "base64":
        try:
            resp.data = base64.b64decode(run.result, validate=True)
            return
        except (binascii.Error, ValueError):
            pass
    resp.text = run.result
