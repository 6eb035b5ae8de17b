"""Meter sessions: the only place that waits for a meter's answer."""
