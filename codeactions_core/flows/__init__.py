"""Flows: versioned chains of steps run by step-runner plugins."""
