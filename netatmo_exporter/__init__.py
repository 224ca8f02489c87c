"""Prometheus exporter for Netatmo weather stations and Home Coach devices."""

__version__ = "0.1.0"
