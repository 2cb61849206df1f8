"""One registry as replication.yaml names it, and its login from a containers-auth.json file."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from dockerfile_gen.errors import GenError


@dataclass(frozen=True)
class Endpoint:
    """One registry as the user configured it."""

    name: str  # the name in replication.yaml, or the host itself
    host: str  # HOST[:PORT]
    insecure: bool = False  # plain HTTP, no TLS
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    authfile: str | None = None  # containers-auth.json (podman/skopeo login) or a docker config.json

    @property
    def label(self) -> str:
        return self.host if self.name == self.host else f"{self.name} ({self.host})"


def credentials(authfile: str, host: str) -> tuple[str, str] | None:
    """The user and password for host in a containers-auth.json / docker config.json."""
    try:
        with open(authfile, "rb") as handle:
            data = json.loads(handle.read(1 << 20))
    except OSError as exc:
        raise GenError(f"cannot read credentials: {exc.strerror}", authfile) from None
    except ValueError:
        raise GenError("is not JSON (expected a containers-auth.json, as `podman login` writes it)", authfile) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        raise GenError("has no 'auths' mapping (expected a containers-auth.json, as `podman login` writes it)", authfile)
    entry = auths.get(host) or auths.get(f"https://{host}") or auths.get(f"http://{host}")
    if entry is None:
        return None
    try:
        user, _, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
    except (KeyError, TypeError, ValueError):
        raise GenError(f"auths.{host}.auth: must be base64 of USER:PASSWORD", authfile) from None
    return user, password
