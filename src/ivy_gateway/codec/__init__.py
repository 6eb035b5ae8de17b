"""Sans-IO protocol codecs: bytes in, typed messages out, and back.

Nothing in this package touches sockets, the event loop, clocks, logging or settings.
Everything about time (timeouts, retries, schedules) lives in the layers above.
"""
