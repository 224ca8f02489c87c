"""Adapters, one subpackage per outside thing: netatmo (its API), metrics (Prometheus),
web (the HTTP edge), lan (what LAN clients may do), pages (what a browser sees), history
(files and remote write), system (this machine's files, sockets, clock, log, systemd)."""
