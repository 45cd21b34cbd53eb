"""``tabular``: update fields of the execution's lead in Bitrix24 through an inbound webhook.

Config::

    {"webhook_url": "https://<portal>/rest/<user>/<token>/",
     "field": "STATUS_ID", "value": "QUALIFIED" (string, number or boolean),
     "additional_fields": [{"field": "UF_CRM_X", "value": <any JSON>}],
     "timeout": seconds (default 30, at most 300)}

The request, exactly::

    POST <webhook_url>crm.lead.update.json
    Content-Type: application/json

    {"id": <lead id>, "fields": {"STATUS_ID": "QUALIFIED", "UF_CRM_X": ...}}

``crm.lead.update.json`` is appended (after a ``/``) unless the URL's last path
segment already names a method (it has a dot, e.g. ``.../crm.deal.update.json``);
then the URL is used as is. The lead id is the execution's, sent as a number
when it is all digits. A field may appear once. The result is Bitrix's JSON
answer (e.g. ``{"result": true, "time": {...}}``); an answer with ``error``
(``{"error": ..., "error_description": ...}``), any status of 400 or more, an
answer that is not JSON, or no answer fails the step. No retries: Bitrix
answers errors as JSON and the step fails with them. The webhook's token is in
its path, so logs and messages show only the host and the method. The webhook's
address obeys the flow egress policy (``runners/common.py``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from codeactions_core.flows.placeholders import or_placeholder
from codeactions_core.flows.runners.common import (
    Egress,
    Response,
    TransportError,
    as_number,
    number_problems,
    opener,
    send,
    url_problems,
)
from codeactions_core.flows.steps import LogFunction, StepContext, StepFailed, StepResult

DEFAULT_METHOD = "crm.lead.update.json"
DEFAULT_TIMEOUT = 30
MAX_TIMEOUT = 300
NOT_JSON = object()

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "webhook_url": {"type": "string", "minLength": 1},
        "field": {"type": "string", "minLength": 1},
        "value": {"type": ["string", "number", "boolean"]},
        "additional_fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string", "minLength": 1}, "value": {}},
                "required": ["field", "value"],
                "additionalProperties": False,
            },
        },
        "timeout": or_placeholder(
            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT}, "a number of seconds"
        ),
    },
    "required": ["webhook_url", "field", "value"],
    "additionalProperties": False,
}


class TabularRunner:
    """Runs ``tabular`` steps: one ``crm.lead.update`` call to a Bitrix24 webhook."""

    step_type = "tabular"
    config_schema = SCHEMA

    def __init__(self, *, egress: Egress | None = None) -> None:
        self._opener = opener(egress or Egress())

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        """The webhook URL is http(s), no field is set twice, a timeout as text is in range."""
        found = url_problems(config.get("webhook_url"), "webhook_url")
        found += number_problems(
            config, "timeout", minimum=0, maximum=MAX_TIMEOUT, exclusive_minimum=True
        )
        names = [config.get("field")] + [
            item.get("field")
            for item in config.get("additional_fields") or []
            if isinstance(item, dict)
        ]
        repeated = sorted(
            {name for name in names if isinstance(name, str) and names.count(name) > 1}
        )
        found += [f"config: field {name!r} is set more than once" for name in repeated]
        return found

    def execute(
        self, config: dict[str, Any], context: StepContext, on_log: LogFunction
    ) -> StepResult:
        """POST the update; Bitrix's answer is the result."""
        if context.lead_id in (None, ""):
            raise StepFailed("tabular steps need a lead id: start the execution with lead_id")
        url = method_url(config["webhook_url"])
        fields = {config["field"]: config["value"]}
        for item in config.get("additional_fields") or []:
            fields[item["field"]] = item["value"]
        payload = {"id": lead_number(context.lead_id), "fields": fields}
        target = f"Bitrix {method_name(url)} on {urlsplit(url).hostname}"
        on_log(f"{target}: lead {context.lead_id}, fields {', '.join(fields)}")
        try:
            response = send(
                "POST",
                url,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                timeout=float(as_number(config.get("timeout", DEFAULT_TIMEOUT), "timeout")),
                through=self._opener,
            )
        except TransportError as error:
            raise StepFailed(f"{target}: {error}") from None
        answer = bitrix_answer(target, response)
        on_log(f"{target}: HTTP {response.status}")
        return StepResult(result=answer)


def method_url(webhook_url: str) -> str:
    """The webhook URL with ``crm.lead.update.json`` appended unless it already names a method."""
    parts = urlsplit(webhook_url)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if "." in last:
        return webhook_url
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit(parts._replace(path=path + DEFAULT_METHOD))


def method_name(url: str) -> str:
    """The Bitrix method a URL calls, e.g. ``crm.lead.update``."""
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return last.removesuffix(".json")


def lead_number(lead_id: Any) -> Any:
    """The lead id as Bitrix expects it: a number when it is all digits."""
    text = str(lead_id)
    return int(text) if text.isdigit() else lead_id


def bitrix_answer(target: str, response: Response) -> Any:
    """Bitrix's JSON answer, or StepFailed naming its error."""
    try:
        answer = json.loads(response.text())  # whatever the content type says
    except ValueError:
        answer = NOT_JSON
    if isinstance(answer, dict) and "error" in answer:
        description = answer.get("error_description") or ""
        detail = f": {description}" if description else ""
        raise StepFailed(
            f"{target} failed with Bitrix error {answer['error']}{detail} (HTTP {response.status})"
        )
    if response.status >= 400:
        raise StepFailed(f"{target} answered HTTP {response.status}: {response.excerpt()}")
    if answer is NOT_JSON:
        raise StepFailed(f"{target} did not answer JSON: {response.excerpt()}")
    return answer
