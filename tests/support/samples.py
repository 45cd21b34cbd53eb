"""Sample code actions used across test suites."""

PYTHON_ACTION = """def Run(engine):
    engine.result.set({"hi": engine.params.get("name")}, content_type="json")
"""
