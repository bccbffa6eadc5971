"""Users from an identity provider: a bearer JWT from the configured issuer acts as a key would.

Seed 003's users sign in with their own auth. With TRACKER_JWT_ISSUER and TRACKER_JWT_AUDIENCE set,
a bearer token shaped like a JWT is verified with PyJWT against the issuer's JWKS (fetched in a
worker thread, kept five minutes, fetched again for a key id it does not know): signature
(RS256, ES256 or EdDSA only), `exp`, `nbf`, `iss` and `aud`, with `sub` required. Each user gets a
tenant of its own, `TRACKER_JWT_TENANT_PREFIX` + `sub`, so no user sees another's tasks, handoffs,
IDs or events, by the same tenant rule that separates API keys. The role is TRACKER_JWT_ROLE.
A token ends with its `exp`: long-lived streams close then.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import jwt
from jwt import PyJWKClient, PyJWKClientConnectionError, PyJWKClientError, PyJWTError

from tracker_service.domain.keys.service import ROLES, Principal
from tracker_service.errors import TrackerError, Unauthorized
from tracker_service.settings import Settings

ALGORITHMS = ["RS256", "ES256", "EdDSA"]  # asymmetric only: "none" and HS256 are never accepted
LEEWAY_SECONDS = 30  # clock skew between the tracker and the identity provider
_NAMESPACE = uuid.UUID("6f2b7c1e-5d0a-4a57-9a43-4c1f0c6f5b11")


class IdentityProviderUnavailable(TrackerError):
    status, code, title = 503, "IDENTITY_PROVIDER_UNAVAILABLE", "Identity provider unavailable"


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three base64url parts, the first a JSON header (`eyJ`). API keys start with trk_."""
    return token.startswith("eyJ") and token.count(".") == 2


class JwtUsers:
    def __init__(self, settings: Settings) -> None:
        if not (settings.jwt_issuer and settings.jwt_audience):
            raise ValueError("JwtUsers needs TRACKER_JWT_ISSUER and TRACKER_JWT_AUDIENCE")
        if settings.jwt_role not in ROLES:
            raise ValueError(f"TRACKER_JWT_ROLE must be one of {', '.join(ROLES)}, not {settings.jwt_role!r}")
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        url = settings.jwt_jwks_url or f"{self.issuer.rstrip('/')}/.well-known/jwks.json"
        # The key set is kept five minutes, not each key for ever (cache_keys): a key the issuer
        # withdraws stops verifying tokens within five minutes. Measured: keeping keys would save
        # about a tenth of a call's time (BENCHMARKS.md, users).
        self._jwks = PyJWKClient(url, lifespan=300, timeout=5, cooldown_duration=10)
        self._role = settings.jwt_role
        self._prefix = settings.jwt_tenant_prefix

    async def principal(self, token: str) -> Principal:
        """The token's user, or Unauthorized saying what was wrong with the token."""
        try:
            signing_key = await anyio.to_thread.run_sync(self._jwks.get_signing_key_from_jwt, token)
        except PyJWKClientConnectionError as exc:
            raise IdentityProviderUnavailable(
                f"the identity provider's signing keys could not be fetched: {exc}"
            ) from None
        except (PyJWKClientError, PyJWTError) as exc:
            raise Unauthorized(f"invalid token: {exc}", invalid_token=True) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}", invalid_token=True) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 200:
            raise Unauthorized("invalid token: sub must be a non-empty string of at most 200 characters")
        # A stable id per user, where a key id goes (rate limits, who asked for a review).
        user_id = uuid.uuid5(_NAMESPACE, f"{self.issuer}\n{subject}")
        return Principal(
            key_id=str(user_id),
            tenant=f"{self._prefix}{subject}",
            name=subject,
            role=self._role,
            expires_at=float(claims["exp"]),
        )
