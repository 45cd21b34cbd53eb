"""The ``codeactions`` command: ``main`` parses, each module is one subcommand.

Every subcommand module has ``register(commands)``, which adds its parser to the
``add_subparsers()`` result and sets ``handler=run``, and ``run(settings, args) -> int``
(the exit status). A process builds only what it needs (``codeactions_core.wiring``).
"""
