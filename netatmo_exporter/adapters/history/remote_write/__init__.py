"""Prometheus remote write 1.0: the wire bytes (`wire`) and the `HistoryReceiver` over it
(`receiver`)."""

from netatmo_exporter.adapters.history.remote_write.receiver import RemoteWriteReceiver, shown_url

__all__ = ["RemoteWriteReceiver", "shown_url"]
