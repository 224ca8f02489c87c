"""The history writers: the backfill's file and spools, its progress line, the
follower's checkpoint, Prometheus remote write."""
