"""In-image agent: environment config links, per-container log dirs, readiness, PID-1 supervision."""

__version__ = "0.1.0"
