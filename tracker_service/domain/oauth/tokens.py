"""OAuth access tokens as credentials of the API: who one acts for (without the SDK's import cost)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import api_keys, oauth_grants, oauth_tokens
from tracker_service.domain.keys.service import ROLES, Principal, hash_key

ACCESS_PREFIX, REFRESH_PREFIX = "trk_oat_", "trk_ort_"


def looks_like_access_token(credential: str) -> bool:
    return credential.startswith(ACCESS_PREFIX)


TOKEN_ROW = (
    select(
        oauth_tokens.c.grant_id,
        oauth_tokens.c.kind,
        oauth_tokens.c.expires_at,
        oauth_tokens.c.used_at,
        oauth_grants.c.client_id,
        oauth_grants.c.role,
        oauth_grants.c.resource,
        api_keys.c.id.label("key_id"),
        api_keys.c.tenant,
        api_keys.c.name,
        api_keys.c.role.label("key_role"),
    )
    .select_from(
        oauth_tokens.join(oauth_grants, oauth_grants.c.id == oauth_tokens.c.grant_id).join(
            api_keys, api_keys.c.id == oauth_grants.c.key_id
        )
    )
    .where(oauth_tokens.c.token_hash == bindparam("token_hash"), api_keys.c.revoked_at.is_(None))
)


async def principal_of_token(conn: AsyncConnection, token: str) -> Principal | None:
    """Who an access token acts for: its key's tenant and name, the lower of the granted role and the
    key's, until it expires; None when it is unknown, expired, revoked, or its key is."""
    row = (await conn.execute(TOKEN_ROW, {"token_hash": hash_key(token)})).first()
    if row is None or row.kind != "access" or row.expires_at <= datetime.now(UTC):
        return None
    role = min(row.role, row.key_role, key=ROLES.index)
    return Principal(
        str(row.key_id),
        row.tenant,
        row.name,
        role,
        expires_at=row.expires_at.timestamp(),
        grant=str(row.grant_id),
        oauth_client=row.client_id,
        oauth_resource=row.resource,
    )
