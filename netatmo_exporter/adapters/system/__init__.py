"""This machine: the token file, atomic writes, the control socket, the clock, the log, systemd."""
