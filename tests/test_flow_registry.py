"""The step-runner registry: which runner serves a type, and what is wrong with a flow's steps."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from codeactions_core import hookimpl
from codeactions_core.errors import ConfigurationError, InvalidInput
from codeactions_core.flows.registry import InvalidSteps, StepRunners, check_resolved
from codeactions_core.flows.runners import WaitRunner, builtin_runners
from codeactions_core.flows.steps import StepFailed, StepResult
from codeactions_core.plugins import get_plugin_manager
from codeactions_core.settings import Settings
from codeactions_core.wiring import load_step_runners


class EchoRunner:
    """A minimal runner; ``owner`` tells which registration it came from."""

    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
    }

    def __init__(self, step_type: str = "echo", owner: str = "test") -> None:
        self.step_type, self.owner = step_type, owner

    def validate_config(self, config: dict[str, Any]) -> list[str]:
        return ["config.text: must not be 'boom'"] if config.get("text") == "boom" else []

    def execute(self, config, context, on_log) -> StepResult:
        return StepResult(result=config.get("text"))


@pytest.fixture
def runners() -> StepRunners:
    return StepRunners(builtin_runners(Settings()))


def problems_of(runners: StepRunners, steps: Any) -> list[str]:
    with pytest.raises(InvalidSteps) as raised:
        runners.validate_steps(steps)
    assert isinstance(raised.value, InvalidInput)
    assert raised.value.message == "invalid steps: " + "; ".join(raised.value.problems)
    return raised.value.problems


def test_builtin_types(runners):
    assert runners.types() == ["code", "http_call", "tabular", "wait"]
    assert isinstance(runners.get("wait"), WaitRunner)
    assert runners.get("nope") is None and "wait" in runners and "nope" not in runners
    assert set(runners.schemas()) == set(runners.types())


def test_valid_steps_are_normalised(runners):
    steps = [
        {
            "id": "fetch",
            "type": "http_call",
            "nome": "Busca",
            "config": {"url": "https://x.test/{{leadId}}"},
        },
        {
            "id": "pause",
            "type": "wait",
            "name": "Pause",
            "config": {"seconds": "{{steps.fetch.result.body.delay}}"},
            "continue_on_error": True,
        },
        {
            "id": "update",
            "type": "tabular",
            "config": {
                "webhook_url": "https://b24.test/rest/1/t/",
                "field": "STATUS_ID",
                "value": "{{variables.status}}",
                "additional_fields": [{"field": "UF_X", "value": {"any": ["json"]}}],
            },
        },
        {
            "id": "run",
            "type": "code",
            "config": {"code_id": "c1", "params": {"n": "{{steps.fetch.result}}"}},
        },
    ]
    normalised = runners.validate_steps(steps)
    assert normalised[0] == {
        "id": "fetch",
        "type": "http_call",
        "name": "Busca",
        "config": {"url": "https://x.test/{{leadId}}"},
        "continue_on_error": False,
    }
    assert [step["name"] for step in normalised] == ["Busca", "Pause", "", ""]
    assert [step["continue_on_error"] for step in normalised] == [False, True, False, False]
    assert "nome" in steps[0]  # the input is left alone
    assert runners.validate_steps([]) == []


@pytest.mark.parametrize(
    ("steps", "kind"), [(None, "null"), ({"id": "a"}, "an object"), ("s", "a string")]
)
def test_steps_must_be_a_list(runners, steps, kind):
    assert problems_of(runners, steps) == [f"steps must be a list of step objects, got {kind}"]


def test_every_problem_is_listed_at_once(runners):
    steps = [
        "not a step",
        {"id": "a", "type": "teleport", "config": {}},
        {"id": "a", "type": "wait", "config": {"seconds": 1}},
        {"id": "", "type": "wait", "config": {"seconds": 1}, "continue_on_error": "yes"},
        {"id": "b", "type": "wait", "config": []},
        {"id": "c.d", "type": "wait", "name": 3, "config": {"seconds": 1}, "confg": {}},
    ]
    assert problems_of(runners, steps) == [
        "step 1: must be an object, got a string",
        "step 2 ('a'): unknown type 'teleport' (known types: code, http_call, tabular, wait)",
        "step 3 ('a'): duplicate id 'a': step 2 has it already",
        "step 4: id must be a non-empty string, got a string",
        "step 4: continue_on_error must be true or false, got a string",
        "step 5 ('b'): config must be an object, got a list",
        (
            "step 6 ('c.d'): unknown field(s) 'confg' "
            "(allowed: id, type, name, nome, config, continue_on_error)"
        ),
        "step 6 ('c.d'): id 'c.d' must not contain dots, whitespace or braces",
        "step 6 ('c.d'): name must be a string, got a number",
    ]


def test_missing_type_and_name_conflict(runners):
    found = problems_of(runners, [{"id": "a", "name": "A", "nome": "B", "config": {}}])
    assert found == [
        "step 1 ('a'): name and nome (its alias) differ: give one of them",
        "step 1 ('a'): type must be one of: code, http_call, tabular, wait",
    ]


def test_references_only_to_earlier_steps(runners):
    steps = [
        {
            "id": "first",
            "type": "http_call",
            "config": {"url": "https://x.test/{{steps.second.result.id}}"},
        },
        {"id": "second", "type": "wait", "config": {"seconds": "{{steps.second.result}}"}},
        {
            "id": "third",
            "type": "code",
            "config": {
                "code_id": "{{steps.first.result.body.code}}",
                "params": {"x": "{{steps.ghost.result}}"},
            },
        },
    ]
    assert problems_of(runners, steps) == [
        "step 1 ('first'): config refers to step 'second', which runs later",
        "step 2 ('second'): config refers to the result of this same step ({{steps.second...}})",
        "step 3 ('third'): config refers to an unknown step 'ghost'",
    ]


def test_placeholders_that_can_never_resolve_are_refused(runners):
    found = problems_of(
        runners, [{"id": "a", "type": "wait", "config": {"seconds": 1, "reason": "{{lead}}"}}]
    )
    assert found == [
        (
            "step 1 ('a'): unknown placeholder {{lead}}: "
            "it must start with one of leadId, variables, steps"
        )
    ]


def test_schema_errors_name_the_json_path(runners):
    steps = [
        {
            "id": "h",
            "type": "http_call",
            "config": {
                "method": "FETCH",
                "url": "https://x.test",
                "headers": {"X-N": {"n": 1}},
                "retry": {"max_attempts": 20, "delay": -1},
                "timeout": 301,
            },
        },
        {
            "id": "t",
            "type": "tabular",
            "config": {
                "webhook_url": "https://b24.test/rest/1/t/",
                "value": None,
                "additional_fields": [{"value": 1}, {"field": "X", "value": 2, "extra": 3}],
            },
        },
        {"id": "w", "type": "wait", "config": {"seconds": 5000, "reasn": "typo"}},
        {"id": "w2", "type": "wait", "config": {"seconds": "soon"}},
        {"id": "w3", "type": "wait", "config": {}},
    ]
    found = problems_of(runners, steps)
    assert found == [
        (
            "step 1 ('h'): config.headers['X-N']: {'n': 1} "
            "is not of type 'string', 'number', 'boolean'"
        ),
        (
            "step 1 ('h'): config.method: 'FETCH' "
            "is not one of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']"
        ),
        "step 1 ('h'): config.retry.delay: -1 is less than the minimum of 0",
        "step 1 ('h'): config.retry.max_attempts: 20 is greater than the maximum of 10",
        "step 1 ('h'): config.timeout: 301 is greater than the maximum of 300",
        "step 2 ('t'): config: 'field' is a required property",
        "step 2 ('t'): config.additional_fields[0]: 'field' is a required property",
        (
            "step 2 ('t'): config.additional_fields[1]: "
            "Additional properties are not allowed ('extra' was unexpected)"
        ),
        "step 2 ('t'): config.value: None is not of type 'string', 'number', 'boolean'",
        "step 3 ('w'): config: Additional properties are not allowed ('reasn' was unexpected)",
        "step 3 ('w'): config.seconds: 5000 is greater than the maximum of 3600",
        (
            "step 4 ('w2'): config.seconds: 'soon' "
            "is not a number of seconds, or a string with a {{placeholder}}"
        ),
        "step 5 ('w3'): config: 'seconds' is a required property",
    ]


def test_runner_checks_beyond_the_schema(runners):
    steps = [
        {"id": "h", "type": "http_call", "config": {"url": "file:///etc/passwd"}},
        {
            "id": "t",
            "type": "tabular",
            "config": {
                "webhook_url": "https://b24.test/rest/1/t/",
                "field": "A",
                "value": 1,
                "additional_fields": [{"field": "B", "value": 2}, {"field": "A", "value": 3}],
            },
        },
        {"id": "w", "type": "wait", "config": {"seconds": "7200"}},
        {"id": "w2", "type": "wait", "config": {"seconds": " 30 "}},
    ]
    assert problems_of(runners, steps) == [
        "step 1 ('h'): config.url: 'file:///etc/passwd' is not an http:// or https:// URL",
        "step 2 ('t'): config: field 'A' is set more than once",
        "step 3 ('w'): config.seconds: '7200' must be greater than 0 and at most 3600",
    ]


def test_check_resolved_fails_the_step_on_a_bad_resolved_config(runners):
    wait = runners.get("wait")
    check_resolved(wait, {"seconds": 10})
    check_resolved(wait, {"seconds": "10"})
    with pytest.raises(StepFailed) as raised:
        check_resolved(wait, {"seconds": "ten"})
    assert raised.value.message.startswith(
        "invalid config once placeholders were resolved: config.seconds:"
    )
    with pytest.raises(StepFailed, match="must be greater than 0 and at most 3600"):
        check_resolved(wait, {"seconds": "0"})
    with pytest.raises(StepFailed, match=r"config.url: 'ftp://x.test/' is not an http"):
        check_resolved(runners.get("http_call"), {"url": "ftp://x.test/"})


def test_a_crashing_validate_config_is_reported_not_raised():
    class Crashing(EchoRunner):
        def validate_config(self, config):
            raise KeyError("text")

    found = problems_of(StepRunners([Crashing()]), [{"id": "a", "type": "echo", "config": {}}])
    assert found == [
        "step 1 ('a'): config could not be checked by the 'echo' runner: KeyError: 'text'"
    ]


def test_first_runner_of_a_type_wins():
    runners = StepRunners(
        [EchoRunner(owner="first"), EchoRunner(owner="second"), EchoRunner("other")]
    )
    assert runners.get("echo").owner == "first"
    assert runners.types() == ["echo", "other"]
    assert problems_of(runners, [{"id": "a", "type": "echo", "config": {"text": "boom"}}]) == [
        "step 1 ('a'): config.text: must not be 'boom'"
    ]


def test_a_runner_with_a_broken_schema_or_no_type_is_refused():
    broken = EchoRunner()
    broken.config_schema = {"type": "thing"}
    with pytest.raises(ConfigurationError, match="config_schema of step runner 'echo'"):
        StepRunners([broken])
    with pytest.raises(ConfigurationError, match="is not a step runner"):
        StepRunners([object()])
    with pytest.raises(ConfigurationError, match="is not a step runner"):
        StepRunners([EchoRunner(step_type="")])


def test_load_step_runners_puts_a_plugin_before_the_builtins(tmp_path):
    class ThirdParty:
        @hookimpl
        def codeactions_step_runners(self, settings):
            return [
                EchoRunner("wait", owner="third-party"),
                EchoRunner("echo", owner="third-party"),
            ]

    settings = Settings(data_dir=str(tmp_path))
    pm = get_plugin_manager(settings)
    assert load_step_runners(pm, settings).types() == ["code", "http_call", "tabular", "wait"]
    pm.register(ThirdParty(), name="third-party")
    runners = load_step_runners(pm, settings)
    assert runners.types() == ["code", "echo", "http_call", "tabular", "wait"]
    assert runners.get("wait").owner == "third-party"


def test_disabling_the_core_plugin_removes_the_builtins(tmp_path):
    settings = Settings(
        data_dir=str(tmp_path), disable_plugins=("codeactions_core.default_plugins",)
    )
    assert load_step_runners(get_plugin_manager(settings), settings).types() == []
