"""The HTTP edge: the waitress server and its limits, the route table, Host and form
guards, the web configuration."""
