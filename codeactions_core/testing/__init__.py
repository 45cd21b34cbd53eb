"""What a plugin's tests need from the core.

- the contract suites a store must pass: ``store_contract`` (with ``log_store_contract``,
  ``version_store_contract``, ``schedule_store_contract``), ``flow_store_contract``,
  ``async_store_contract``, ``lock_contract``;
- ``api``: the API in-process (services, schema, a falcon test client);
- ``server``: real ``codeactions`` processes (``start_server``, ``run_cli``, ``CodeClient``);
- ``fixtures``: pytest fixtures (Redis, fresh PostgreSQL databases), opt-in: a suite's
  ``conftest.py`` imports those it uses.

The core's own fakes and helpers live in the repository's ``tests/support``.
"""
