"""The Prometheus side: the metric catalog, one collector per concern, the generated docs."""
