"""The use cases (codes, runs, flows, projects, access, ...); ``codeactions_core.wiring``
builds them from settings and plugins."""
