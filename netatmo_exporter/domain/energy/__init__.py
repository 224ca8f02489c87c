"""Netatmo Energy: homes, rooms, heating modules and their poller."""
