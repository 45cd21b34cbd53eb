"""The HTTP API: Falcon app factory, resources, middleware and error handling."""
