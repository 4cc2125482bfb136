"""``datarun test``: run a kit and a submission locally (no server)."""
