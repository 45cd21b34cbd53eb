"""`codeactions client`: a command-line client of the HTTP API."""
