"""Running user code: the runtime contract, sandbox and worker pool."""
