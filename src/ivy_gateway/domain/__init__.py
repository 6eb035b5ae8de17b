"""The vocabulary every layer shares: meters, quantities, readings, commands, events, errors.

Standard library only; nothing here knows about bytes on a wire or any I/O.
"""
