"""The settings classes: ``Settings``, every setting of the core declared once with its
variable, default and meaning, and ``PluginSettings``, the base of a plugin's own."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from codeactions_core.errors import ConfigurationError
from codeactions_core.settings.legacy import legacy_defaults
from codeactions_core.settings.parsing import (
    at_least,
    parse_auto_bool,
    parse_bool,
    parse_clock,
    parse_code_types,
    parse_db_type,
    parse_egress_terms,
    parse_fernet_keys,
    parse_float,
    parse_log_level,
    parse_network_mode,
    parse_protections,
    parse_terms,
    port,
    port_or_off,
)
from codeactions_core.settings.spec import (
    PREFIX,
    check_variables_unique,
    describe_settings,
    read_values,
    setting,
)
from codeactions_core.settings.stores import StoreType, resolve_store_type

SPARE_REQUEST_THREADS = 8


@dataclass(frozen=True)
class Settings:
    """Everything the processes can be configured with (COMPAT.md "Configuration")."""

    plugin_settings: tuple[PluginSettings, ...] = field(default=(), metadata={"plugins": True})
    """The plugins' own settings, one PluginSettings per declaring class (read them with
    ``plugin``); filled by ``from_env(plugins=...)``."""

    host: str = setting(
        "0.0.0.0",
        "Address the API listens on; `:` or `:PORT` (the old service's forms) mean all "
        "interfaces (and that port when PORT is unset).",
    )
    port: int = setting(8050, "Port the API listens on.", parse=port)
    data_dir: str = setting(
        "./data", "Directory for the embedded SQLite database and local caches."
    )
    web_workers: int = setting(2, "Worker processes of `codeactions serve`.", parse=at_least(1))
    web_threads: int = setting(
        0,
        "Threads per server process (the API runs in them behind an asyncio front). A request, "
        "and the run it asks for, holds one; 0: WORKER_POOL_SIZE + WORKER_POOL_QUEUE_SIZE + 8, "
        "so that a full queue answers 503 at once.",
        parse=at_least(0),
    )

    db_type: str = setting(
        "sqlite",
        "Store: `sqlite` (embedded default), `postgres` or `mongodb`, or any a store plugin "
        "declares. Unset: taken from the `DB_URI` scheme (`postgres://`, `postgresql://`, "
        "`mongodb://`; anything else SQLite).",
        parse=parse_db_type,
    )
    db_uri: str = setting(
        "",
        "Database URI: `sqlite:///path/to.db` or `postgres://user:pass@host:5432/db`. "
        "Unset: `<DATA_DIR>/codeactions.db` for SQLite, "
        "`postgres://postgres@127.0.0.1:5432/<DB_NAME>` for PostgreSQL.",
        secret=True,
    )
    db_name: str = setting("codeactions", "PostgreSQL database name when `DB_URI` names none.")
    db_max_pool_size: int = setting(
        10,
        "Most database connections each process keeps per pool (PostgreSQL: a second pool writes "
        "run history unless DB_SYNCHRONOUS_RUNS; MongoDB).",
        parse=at_least(1),
    )
    db_synchronous_runs: bool = setting(
        False,
        "Wait for PostgreSQL to flush every run and log record to disk before answering. Off: "
        "a crash of the database server may lose its last fraction of a second of run history "
        "(never codes, projects or permissions), for about a third less database work per run.",
        parse=parse_bool,
    )
    db_connect_timeout: float = setting(
        5.0,
        "Seconds to wait for a new database connection (PostgreSQL `connect_timeout`; MongoDB "
        "connect and server selection) before the request answers 503.",
        parse=at_least(0.5, parse_float),
    )
    db_statement_timeout: float = setting(
        10.0,
        "Seconds one database statement may take (PostgreSQL `statement_timeout`, MongoDB socket "
        "timeout). A frozen or partitioned database answers 503 after at most this plus "
        "2 seconds, when the server cuts the connection itself; migrations are not bounded.",
        parse=at_least(0.5, parse_float),
    )

    auth_token: str = setting(
        "",
        "Service token: `/run` then requires `Authorization: Token <token>`; "
        "it also grants full management access.",
        secret=True,
    )
    environment: str = setting("local", "Deployment name, shown in `/health`.")
    log_level: str = setting(
        "info", "Log level: debug, info, warning, error, critical.", parse=parse_log_level
    )
    sentry_dsn: str = setting(
        "", "Sentry DSN; errors are reported when `sentry-sdk` is installed.", secret=True
    )
    redis: str = setting(
        "",
        "Redis URL (e.g. `redis://localhost:6379/10`) for shared rate limits and locks; "
        "unset: in-process limiter, database locks.",
        secret=True,
    )
    redis_timeout: float = setting(
        0.5,
        "Seconds a request waits for Redis (connect and each command) before it goes on without "
        "it (rate limits fail open); scheduler locks wait at least 5 s, then use the database.",
        parse=at_least(0.05, parse_float),
    )
    code_limiter_max_requests: int = setting(
        600, "Requests allowed per code id and window on `/action/endpoint`.", parse=at_least(1)
    )
    code_limiter_window: int = setting(
        60,
        "Rate-limit window in seconds.",
        env=PREFIX + "CODE_LIMITER_WINDOW_WINDOW",
        parse=at_least(1),
    )
    rate_limit_fail_open: bool = setting(
        True,
        "When Redis cannot be reached, let requests through (logged, counted) rather than "
        "refuse them.",
        parse=parse_bool,
    )
    cleaner_schedule_time: str = setting(
        "01:00", "Time of day (HH:MM, UTC) the cleaners run.", parse=parse_clock
    )
    cleaner_retention_period: int = setting(30, "Days runs and logs are kept.", parse=at_least(1))
    cleaner_batch_size: int = setting(
        1000, "Rows a cleaner deletes per statement.", parse=at_least(1)
    )
    cleaner_lock_seconds: int = setting(
        3600,
        "How long a cleaning pass may hold the lock that keeps other scheduler replicas out; "
        "a crashed holder's lock expires after it.",
        parse=at_least(10),
    )
    schedule_poll_seconds: float = setting(
        5.0,
        "How often `codeactions scheduler` looks for schedules that are due.",
        parse=at_least(0.2, parse_float),
    )
    schedule_misfire_grace_seconds: int = setting(
        60,
        "How late a schedule's occurrence may still be fired; older ones (no scheduler was "
        "running) are counted as missed on the schedule, not replayed.",
        parse=at_least(1),
    )
    blacklist: tuple[str, ...] = setting(
        (),
        "Comma-separated terms a source may not contain: a convenience filter against typos and "
        "accidents, not a security control (trivially bypassed; the sandbox is the control).",
        parse=parse_terms,
    )
    skiplist: tuple[str, ...] = setting(
        (), "Comma-separated Python libraries never installed.", parse=parse_terms
    )
    auto_install_libs: bool = setting(
        False,
        "Install a Python code's libraries (its non-standard imports) when it is created or "
        "updated.",
        parse=parse_bool,
    )
    libs_install_timeout: int = setting(
        300, "Seconds `pip install` of libraries may take.", parse=at_least(10)
    )

    worker_pool_size: int = setting(
        4, "Runs executing at once per server process.", parse=at_least(1)
    )
    worker_pool_queue_size: int = setting(
        100, "Runs waiting per server process before new ones get 503.", parse=at_least(0)
    )
    run_lease_seconds: int = setting(
        15,
        "How long a server process's claim on its unfinished runs lasts unless renewed (every "
        "third of it): once a process dies (SIGKILL, OOM), its queued and started runs are "
        "failed after this, by the other processes and the scheduler; a restarted `serve` fails "
        "its predecessor's at once.",
        parse=at_least(3),
    )
    run_outbox_mb: int = setting(
        64,
        "Size cap in MiB of the local outbox (`<DATA_DIR>/outbox`): a run whose code ran while "
        "the database was unreachable still answers, and its record is written from there, in "
        "order, once the database is back. 0: no outbox (such a run answers 500).",
        parse=at_least(0),
    )
    metrics_dir: str = setting(
        "",
        "Directory for the metrics of all server processes (prometheus multiprocess mode); "
        "unset: <DATA_DIR>/metrics. Emptied when `serve` starts.",
    )
    health_check_cache_time: float = setting(
        3.0, "Seconds `/health` results are cached.", parse=at_least(0, parse_float)
    )
    graceful_timeout: int = setting(
        330,
        "Seconds `serve` lets in-flight runs finish after SIGTERM (the longest code timeout, 300, "
        'plus a margin); runs still going then are recorded failed "server shutting down".',
        parse=at_least(0),
    )
    header_timeout: float = setting(
        10.0,
        "Seconds a client has to send a request's line and headers before it is disconnected.",
        parse=at_least(0.1, parse_float),
    )
    body_timeout: float = setting(
        30.0,
        "Seconds a client has to send a request's body before it gets 408.",
        parse=at_least(0.1, parse_float),
    )
    max_connections: int = setting(
        1000,
        "Open connections per server process; a request beyond them is refused at once with 503.",
        parse=at_least(1),
    )
    min_free_disk_mb: int = setting(
        100,
        "Free space (MiB) the data directory needs; below it `/health/ready` answers 503.",
        parse=at_least(0),
    )
    log_throttle_seconds: float = setting(
        10.0,
        "Interval within which a repeated identical warning or error is logged once, then "
        "summarised with its count; 0 logs every one.",
        parse=at_least(0, parse_float),
    )

    sandbox_memory_mb: int = setting(
        512,
        "Memory a run may use, in MiB (address space; also its memory cgroup when available).",
        parse=at_least(32),
    )
    sandbox_processes: int = setting(
        64, "Processes and threads one run may have (pids cgroup).", parse=at_least(8)
    )
    sandbox_file_size_mb: int = setting(
        16, "Largest file a run may write, in MiB.", parse=at_least(1)
    )
    sandbox_scratch_mb: int = setting(
        64, "Size of a run's private scratch directory (/tmp), in MiB.", parse=at_least(1)
    )
    sandbox_open_files: int = setting(256, "Files a run may have open at once.", parse=at_least(16))
    sandbox_output_kb: int = setting(
        1024,
        "Bytes kept of each of a run's stdout and stderr, in KiB (the rest is cut).",
        parse=at_least(1),
    )
    sandbox_network: str = setting(
        "egress",
        "Network of a run, always in a private network namespace: `egress` (default: the public "
        "internet yes; loopback, private, link-local/metadata, CGNAT, ULA, multicast, "
        "documentation ranges and the server's own addresses no), `none` (loopback only) or "
        "`host` (the server's own network, for development only). `true`/`false` mean "
        "`egress`/`none`.",
        parse=parse_network_mode,
    )
    sandbox_egress_allow: tuple[str, ...] = setting(
        (),
        "Comma-separated CIDRs (`10.1.2.0/24`) or `host:port` entries (`10.1.2.3:443`) that runs "
        "may reach in `egress` mode although the policy denies their range (e.g. a partner's "
        "private API).",
        parse=parse_egress_terms,
    )
    sandbox_egress_deny: tuple[str, ...] = setting(
        (),
        "Comma-separated CIDRs or `host:port` entries that runs may not reach in `egress` mode, "
        "beyond the ranges always denied.",
        parse=parse_egress_terms,
    )
    sandbox_dns: tuple[str, ...] = setting(
        (),
        "Comma-separated name servers of runs in `egress` mode (reachable on port 53 whatever "
        "their range); unset: the server's own from /etc/resolv.conf.",
        parse=parse_terms,
    )
    sandbox_network_subnet: str = setting(
        "10.254.0.0/16",
        "Private IPv4 range the sandbox network uses for its own links (never reachable by runs); "
        "pick one no real network of the host uses.",
    )
    sandbox_cpus: float = setting(
        1.0,
        "CPU cap of every run, in cores (cgroup cpu quota), with an equal weight for all runs; "
        "applies whatever RESOURCE_ENABLED says (CPU_QUOTA, when set with it, wins).",
        parse=at_least(0.01, parse_float),
    )
    sandbox_require: tuple[str, ...] = setting(
        (),
        "Comma-separated protections the server refuses to start without, e.g. "
        "`filesystem,egress,seccomp,uid,cgroups` (`all`: every one). Unset: start in the strongest "
        "mode the machine allows and say which protections are off.",
        parse=parse_protections,
    )
    sandbox_user: str = setting(
        "nobody",
        "User (name or uid) runs execute as when the server runs as root and no uid range is "
        "available (SANDBOX_UID_COUNT=0).",
    )
    sandbox_uid_base: int = setting(
        200000,
        "First uid (and gid) of the range concurrent runs take one each of, when the server runs "
        "as root (like isolate's box uids); no user or file on the host should use the range.",
        parse=at_least(1000),
    )
    sandbox_uid_count: int = setting(
        4096,
        "Size of that uid range: the most sandboxes that can exist at once on one machine "
        "(0: every run uses SANDBOX_USER).",
        parse=at_least(0),
    )
    sandbox_hidden_paths: tuple[str, ...] = setting(
        (),
        "Comma-separated paths masked by an empty directory if a runtime binds a folder holding "
        "them.",
        parse=parse_terms,
    )
    resource_enabled: bool = setting(
        False, "Put runs in cgroups with the limits below.", parse=parse_bool
    )
    cpu_shares: int = setting(0, "cgroup CPU shares of a run (0: unset).", parse=at_least(0))
    cpu_quota: int = setting(
        0, "cgroup CPU quota in microseconds per 100 ms (0: unset).", parse=at_least(0)
    )
    memory_limit: int = setting(
        0, "cgroup memory limit of a run in bytes (0: unset).", parse=at_least(0)
    )

    rabbitmq_url: str = setting(
        "", "AMQP URL of the broker for project and permission events.", secret=True
    )
    project_exchange: str = setting("projects.topic", "Topic exchange of project events.")
    project_queue: str = setting("code-actions.projects", "Queue of project events.")
    permission_exchange: str = setting("permissions.topic", "Topic exchange of permission events.")
    permission_queue: str = setting(
        "code-actions-permissions",
        "Queue of permission events (the old name really lacks the S).",
        env="FLOW_CODE_ACTIONS_PERMISSION_QUEUE",
        aliases=(PREFIX + "PERMISSION_QUEUE",),
    )

    flow_exchange: str = setting(
        "codeactions.flows", "Direct exchange announcing flow executions that are due."
    )
    flow_queue: str = setting(
        "codeactions.flow-executions", "Queue `codeactions worker` takes due executions from."
    )
    flow_worker_threads: int = setting(
        4,
        "Executions one `codeactions worker` (or server process) drives at once.",
        parse=at_least(1),
    )
    worker_metrics_port: int = setting(
        0,
        "Port `codeactions worker` serves Prometheus `/metrics` on (on HOST); 0: none.",
        parse=port_or_off,
    )
    flow_lease_seconds: int = setting(
        30,
        "How long a worker's claim on an execution lasts unless renewed (it is, while a step "
        "runs); after a worker dies, its executions go on elsewhere once this passes.",
        parse=at_least(2),
    )
    flow_poll_seconds: float = setting(
        1.0,
        "How often workers look in the store for executions that are due (waits that ended, "
        "executions a dead worker left).",
        parse=at_least(0.05, parse_float),
    )
    flow_wait_seconds: float = setting(
        30.0,
        "Longest `POST /flows/{id}/executions?wait=true` waits for the execution to finish "
        "before answering 202 with it unfinished.",
        parse=at_least(0, parse_float),
    )
    flows_in_server: bool | None = setting(
        None,
        "Whether `serve` drives flow executions itself: `auto` (default) when no RABBITMQ_URL "
        "is set; with a broker, run `codeactions worker` processes instead.",
        parse=parse_auto_bool,
    )

    # Async runs and callbacks (issue 15).
    async_run_exchange: str = setting(
        "codeactions.runs", "Direct exchange async runs are published to (with a RABBITMQ_URL)."
    )
    async_run_queue: str = setting(
        "codeactions.async-runs", "Durable queue `codeactions worker` takes async runs from."
    )
    async_worker_threads: int = setting(
        4, "Async runs one `codeactions worker` executes at once.", parse=at_least(1)
    )
    callback_attempts: int = setting(
        5,
        "Attempts to deliver a finished async run to its `callback_url` (any 2xx ends them).",
        parse=at_least(1),
    )
    callback_backoff_seconds: float = setting(
        1.0,
        "Pause before the second callback attempt; it doubles for each later one (at most 60 s).",
        parse=at_least(0, parse_float),
    )
    callback_timeout_seconds: float = setting(
        10.0,
        "Seconds one callback attempt may take (connecting, sending, reading the answer).",
        parse=at_least(0.1, parse_float),
    )

    # Trust at the API (issue 11): credentials, metrics, fair sharing, run caps, flow egress.
    redact_headers: tuple[str, ...] = setting(
        (),
        "Comma-separated header names stored runs keep redacted, besides `Authorization`, "
        "`Proxy-Authorization` and `Cookie` (always redacted). The code itself still sees them "
        "on the public routes.",
        parse=parse_terms,
    )
    metrics_token: str = setting(
        "",
        "Token a scraper may present (`Authorization: Bearer <token>`) to read `/metrics`, besides "
        "the service token. Set, or any auth configured: `/metrics` needs one of them.",
        secret=True,
    )
    metrics_code_labels: bool = setting(
        True,
        "Label run and code metrics with `project_uuid` and `code_id`; false: those labels are "
        "left empty (for deployments whose `/metrics` stays public).",
        parse=parse_bool,
    )
    project_max_concurrent_runs: int = setting(
        0,
        "Runs of one project executing at once per server process; 0: three quarters of "
        "WORKER_POOL_SIZE (at least 1), so that other projects always find a free worker.",
        parse=at_least(0),
    )
    project_max_queued_runs: int = setting(
        0,
        "Runs of one project waiting per server process before its new ones get 503; 0: three "
        "quarters of WORKER_POOL_QUEUE_SIZE, so that other projects always find room in the queue.",
        parse=at_least(0),
    )
    run_max_log_lines: int = setting(
        1000,
        "Log lines the server keeps of one run, whatever the sandbox reports (the rest are "
        "dropped and counted in a last line).",
        parse=at_least(1),
    )
    run_max_log_kb: int = setting(
        1024, "Bytes of log lines the server keeps of one run, in KiB.", parse=at_least(1)
    )
    run_max_result_kb: int = setting(
        4096,
        "Largest result the server stores, in KiB: a larger one fails the run.",
        parse=at_least(1),
    )
    run_max_extra_kb: int = setting(
        64,
        "Largest `extra` a runtime may report beyond stdout and stderr (which SANDBOX_OUTPUT_KB "
        "bounds), in KiB: a larger one is dropped and the run says so.",
        parse=at_least(1),
    )
    flow_egress_allow: tuple[str, ...] = setting(
        (),
        "Comma-separated CIDRs (`10.1.2.0/24`) or `host:port` entries (`10.1.2.3:443`) that the "
        "`http_call` and `tabular` flow steps and async-run callbacks may reach although the "
        "egress policy denies their range (loopback, private, link-local/metadata, CGNAT, ULA, "
        "multicast...).",
        parse=parse_egress_terms,
    )
    flow_egress_deny: tuple[str, ...] = setting(
        (),
        "Comma-separated CIDRs or `host:port` entries the `http_call` and `tabular` flow steps "
        "and async-run callbacks may not reach, beyond the ranges always denied.",
        parse=parse_egress_terms,
    )

    disable_plugins: tuple[str, ...] = setting(
        (),
        "Comma-separated plugin names (as `codeactions plugins` lists them) not to load.",
        env="CODEACTIONS_DISABLE_PLUGINS",
        parse=parse_terms,
    )

    endpoint_code_types: tuple[str, ...] = setting(
        ("endpoint", "flow"),
        "Code types `/endpoint` and `/action/endpoint` run (others answer 404): the old service "
        "ran flow codes there too; `endpoint` restores the stricter 404 for flow codes.",
        parse=parse_code_types,
    )
    secrets_key: tuple[str, ...] = setting(
        (),
        "Comma-separated Fernet keys that encrypt project secrets at rest, newest first: the "
        "first encrypts, every one decrypts (rotation: prepend a new key, run `codeactions "
        "secrets rotate`, then drop the old one). Unset: secrets are refused. "
        "`codeactions secrets new-key` prints a new key.",
        parse=parse_fernet_keys,
        secret=True,
    )
    python_binary: str = setting(
        "",
        "Python interpreter that runs user code in the sandbox (e.g. `/usr/local/bin/python3.12`, "
        "the old image's version); unset: the server's own.",
    )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        plugins: Iterable[type[PluginSettings]] = (),
    ) -> Settings:
        """Read and validate every setting, the core's and those of the ``plugins`` classes
        (the plugins' declarations); raise ConfigurationError naming a bad one.

        With ``plugins`` given, DB_TYPE is resolved against the store types they declare
        (``PluginSettings.store_types``): a name or alias, or unset, the store whose URI
        schemes include DB_URI's, else ``sqlite``; an undeclared one stops the start.
        """
        environ = os.environ if environ is None else environ
        values = read_values(describe_settings(cls), environ)
        try:
            values.update(legacy_defaults(values))
        except ValueError as exc:
            raise ConfigurationError(f"{PREFIX}HOST: {exc}") from None
        plugins = tuple(plugins)
        if plugins:
            check_variables_unique(cls, plugins)
            declared = (store for section in plugins for store in section.store_types)
            values["db_type"] = resolve_store_type(values, declared)
        settings = cls(**values)
        settings.validate()
        if not plugins:
            return settings
        return settings.with_plugin(*(section.from_env(environ, settings) for section in plugins))

    def plugin(self, section: type[SectionT]) -> SectionT:
        """A plugin's settings, by its PluginSettings class: as read at start, or (settings
        built in code without them) its defaults."""
        for value in self.plugin_settings:
            if type(value) is section:
                return value
        return section()

    @classmethod
    def of(cls, *plugins: type[PluginSettings], **values: Any) -> Settings:
        """Settings built in code (tests, tools): each value goes to the core or to the one
        of the ``plugins`` classes that declares it; the rest keep their defaults."""
        owned = {f.name: section for section in plugins for f in dataclasses.fields(section)}
        unknown = set(values) - owned.keys() - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"no such setting: {', '.join(sorted(unknown))}")
        core = cls(**{name: value for name, value in values.items() if name not in owned})
        return core.with_plugin(
            *(
                section(
                    **{name: value for name, value in values.items() if owned.get(name) is section}
                )
                for section in plugins
            )
        )

    def with_plugin(self, *sections: PluginSettings) -> Settings:
        """These settings with ``sections`` in place of any of the same classes."""
        replaced = {type(section) for section in sections}
        kept = tuple(value for value in self.plugin_settings if type(value) not in replaced)
        return self.replace(plugin_settings=kept + sections)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Checks that involve several settings (a plugin's own: its ``validate``)."""

    @property
    def project_run_limits(self) -> tuple[int, int]:
        """Runs of one project executing and waiting at once per process (0s resolved)."""
        running = self.project_max_concurrent_runs or max(1, self.worker_pool_size * 3 // 4)
        waiting = self.project_max_queued_runs or self.worker_pool_queue_size * 3 // 4
        return min(running, self.worker_pool_size), min(waiting, self.worker_pool_queue_size)

    @property
    def request_threads(self) -> int:
        """Threads per server process: WEB_THREADS, or enough for every admitted run."""
        spare = SPARE_REQUEST_THREADS  # so that the run after a full queue gets its 503 at once
        return self.web_threads or self.worker_pool_size + self.worker_pool_queue_size + spare

    @property
    def drives_flows_in_server(self) -> bool:
        """``FLOWS_IN_SERVER``, or, on auto, whether no broker is configured."""
        return (not self.rabbitmq_url) if self.flows_in_server is None else self.flows_in_server

    @property
    def metrics_directory(self) -> Path:
        """Where `serve` keeps its workers' metrics: METRICS_DIR or <DATA_DIR>/metrics."""
        return Path(self.metrics_dir) if self.metrics_dir else Path(self.data_dir) / "metrics"


SectionT = TypeVar("SectionT", bound="PluginSettings")


class PluginSettings:
    """Base of a plugin's own settings: subclass it as a frozen dataclass whose fields are
    declared with ``setting(...)`` like the core's, and return the class from the plugin's
    ``codeactions_settings`` hook.

    A field ``s3_bucket_name`` is read from ``FLOWS_CODE_ACTIONS_S3_BUCKET_NAME`` (or the
    ``env`` its ``setting`` names), parsed and validated at start with the core's, listed
    by ``codeactions settings``; the plugin reads the values with
    ``settings.plugin(ItsSettings)``. The first line of the class docstring titles the
    plugin's table in ``codeactions settings --markdown``.
    """

    store_types: ClassVar[tuple[StoreType, ...]] = ()
    """The DB_TYPE values the plugin's store understands (a store plugin declares them)."""

    @classmethod
    def legacy_defaults(cls, values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        """Defaults that depend on other settings: ``values`` are those set in the
        environment, ``settings`` the core's. Returns the values to add."""
        return {}

    def validate(self, settings: Settings) -> None:
        """Checks that involve several settings (the core's are ``settings``); raise
        ConfigurationError naming the variable."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], settings: Settings) -> PluginSettings:
        """The plugin's settings read from ``environ``, validated."""
        values = read_values(describe_settings(cls), environ)
        values.update(cls.legacy_defaults(values, settings))
        section = cls(**values)
        section.validate(settings)
        return section
