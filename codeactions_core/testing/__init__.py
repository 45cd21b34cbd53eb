"""Test helpers shipped with the core, for the core and for plugins."""
