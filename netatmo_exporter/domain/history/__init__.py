"""Netatmo's stored history: planning, the backfill, the follower, the remote-write port, dates."""
