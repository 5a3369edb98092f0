"""Shared by the "is every grant needed?" tests: one role's grants as the permissions file lists
them, that file with one grant taken out, and the lines of a client log that tell of a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ajc_gitops.embedded import EmbeddedServer
from tests.security.test_least_privilege import ADMIN, PERMISSIONS, RoleServer, role_server


def _section(text: str, role: str) -> tuple[int, int]:
    start = text.index(f"{role} = {{")
    return start, text.index("\n}\n", start)


def role_grants(role: str) -> list[str]:
    """The publish grants of ``role`` (e.g. ``AJC_SCHEDULER``), in file order."""
    text = PERMISSIONS.read_text()
    start, end = _section(text, role)
    return re.findall(r'^\s+"([^"]+)",', text[start:end], re.M)


def without(role: str, grant: str) -> str:
    """The permissions file with ``grant`` removed from ``role`` alone (other roles keep theirs)."""
    text = PERMISSIONS.read_text()
    start, end = _section(text, role)
    section = "\n".join(line for line in text[start:end].splitlines() if f'"{grant}",' not in line)
    reduced = text[:start] + section + text[end:]
    assert reduced != text, f"{grant} is not a grant of {role}"
    return reduced


def reduced_server(factory: Callable[..., EmbeddedServer], role: str, grant: str) -> RoleServer:
    """A server whose ``role`` lacks ``grant``; every other role is as documented."""
    return role_server(factory, without(role, grant))


def admin_url(roles: RoleServer) -> str:
    return roles.server.url.replace("nats://", f"nats://{ADMIN}:{roles.passwords[ADMIN]}@")


def permission_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "permission" in line.lower() or "violation" in line.lower()]
