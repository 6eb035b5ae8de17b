"""xDLMS and ACSE APDUs (dlms.md Parts B, D, E)."""
