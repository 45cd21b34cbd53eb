"""``/action/endpoint``'s answer: the response the code shaped (status, content type,
headers, a text or binary body), as its run's outcome (stored with the run) has it."""

from __future__ import annotations

import base64
import binascii

import falcon

from codeactions_core.execution.response import header_problem, media_type
from codeactions_core.execution.runtime import Outcome


def answer_with_outcome(resp: falcon.Response, outcome: Outcome) -> None:
    """Answer with what the code of a completed run set (its outcome as stored). Headers
    are checked again here: only what is valid HTTP and not the server's own (hop-by-hop,
    framing) is sent."""
    extra = outcome.extra
    resp.status = falcon.code_to_http_status(outcome.status_code or 200)
    resp.content_type = media_type(outcome.content_type)
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
            resp.data = base64.b64decode(outcome.result, validate=True)
            return
        except (binascii.Error, ValueError):
            pass
    resp.text = outcome.result
