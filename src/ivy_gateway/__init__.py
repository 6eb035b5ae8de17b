"""IVY 4G Gateway: DL/T 645-2007 and DLMS/COSEM meters over TCP, to MQTT, HTTP and SQL."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ivy-gateway")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
