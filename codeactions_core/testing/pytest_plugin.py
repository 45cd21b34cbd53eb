"""pytest fixtures shared by the core and plugin test suites."""
