"""The error every step of the sandbox network's setup raises."""


class NetworkSetupError(Exception):
    """A step of the network setup failed; the message says which and why."""
