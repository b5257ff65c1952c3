"""REST API users, hashed API keys, and the caller's scope.

Tokens are 32 random bytes (``secrets.token_urlsafe``) prefixed ``gfx_``; only their SHA-256 is
stored, so a leaked database does not leak usable keys. A fast hash suffices because the tokens
carry 256 bits of entropy (no dictionary to attack); the lookup is by hash, compared in constant
time by the database index rather than by string comparison in Python.

The :class:`Scope` is what handlers pass to the checks below, so a signature says which tier it
needs (the envoy habit in ``shared/STYLE.md``): ``operator`` reads and writes everything,
``read_only`` reads everything, ``aggregator`` reads only the DER it fronts (and their terms and
history); anything else raises ``PermissionDeniedError``, logged on ``gridflex.derms.audit``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridflex.derms.models import ApiKey, ApiUser, Der, Role, utcnow
from gridflex.derms.registry import get_aggregator
from gridflex.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError

TOKEN_PREFIX = "gfx_"
audit_log = logging.getLogger("gridflex.derms.audit")


@dataclass(frozen=True)
class Scope:
    """Who is calling and what they may touch."""

    user: str
    role: Role
    aggregator_id: int | None = None

    @property
    def can_write(self) -> bool:
        """Only operators change the registry."""
        return self.role is Role.OPERATOR

    @property
    def sees_everything(self) -> bool:
        """Operators and read-only users see every object."""
        return self.role in (Role.OPERATOR, Role.READ_ONLY)

    def deny(self, what: str) -> PermissionDeniedError:
        """Log a refused access and build the error to raise."""
        audit_log.warning(
            "access denied: user=%s role=%s aggregator=%s tried %s",
            self.user, self.role.value, self.aggregator_id, what,
        )  # fmt: skip
        return PermissionDeniedError(f"user {self.user!r} (role {self.role.value}) may not {what}")

    def require_write(self, what: str) -> None:
        """Raise unless the caller may change the registry."""
        if not self.can_write:
            raise self.deny(what)

    def require_everything(self, what: str) -> None:
        """Raise unless the caller sees every object (operator or read-only)."""
        if not self.sees_everything:
            raise self.deny(what)

    def require_der(self, der: Der, what: str) -> None:
        """Raise unless the caller may see this DER (aggregators: only their own)."""
        if self.sees_everything:
            return
        if self.aggregator_id is None or der.aggregator_id != self.aggregator_id:
            raise self.deny(
                f"{what} (DER {der.id} is not fronted by aggregator {self.aggregator_id})"
            )


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session, *, name: str, role: str, aggregator_id: int | None = None
) -> ApiUser:
    """Create an API user; aggregator users need ``aggregator_id``, other roles take none."""
    if not name.strip():
        raise InputError("user name is empty", "give the user a name")
    try:
        r = Role(role)
    except ValueError:
        raise InputError(
            f"role {role!r} is not known", f"use one of: {', '.join(x.value for x in Role)}"
        ) from None
    if r is Role.AGGREGATOR:
        if aggregator_id is None:
            raise InputError(
                "an aggregator user needs aggregator_id",
                "give the id of the aggregator it acts for",
            )
        get_aggregator(session, aggregator_id)
    elif aggregator_id is not None:
        raise InputError(
            f"role {r.value} takes no aggregator_id", "only aggregator users are scoped"
        )
    if session.scalars(select(ApiUser).where(ApiUser.name == name.strip())).first() is not None:
        raise ConflictError(f"user {name.strip()!r} already exists")
    user = ApiUser(name=name.strip(), role=r.value, aggregator_id=aggregator_id)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, name: str) -> ApiUser:
    """The user with this name (``NotFoundError`` otherwise)."""
    user = session.scalars(select(ApiUser).where(ApiUser.name == name)).one_or_none()
    if user is None:
        raise NotFoundError(f"user {name!r} does not exist")
    return user


def issue_key(session: Session, user_id: int) -> str:
    """Issue a new API key for a user and return it (the only time it is visible)."""
    user = session.get(ApiUser, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(user_id=user.id, prefix=token[:12], key_sha256=hash_token(token)))
    session.flush()
    return token


def revoke_keys(session: Session, user_id: int) -> int:
    """Revoke every active key of a user; returns how many were revoked."""
    now = utcnow()
    keys = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    ).all()
    for key in keys:
        key.revoked_at = now
    session.flush()
    return len(keys)


def authenticate(session: Session, token: str) -> Scope | None:
    """The scope of a token, or ``None`` when it is unknown, revoked or its user disabled."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(
        select(ApiKey, ApiUser)
        .join(ApiUser, ApiUser.id == ApiKey.user_id)
        .where(ApiKey.key_sha256 == hash_token(token))
    ).one_or_none()
    if row is None:
        return None
    key, user = row
    if key.revoked_at is not None or user.disabled:
        return None
    return Scope(user=user.name, role=Role(user.role), aggregator_id=user.aggregator_id)
