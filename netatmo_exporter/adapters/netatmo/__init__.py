"""Netatmo's API: the HTTP client and the parsers of its answers, read as untrusted input."""
