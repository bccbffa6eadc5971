"""Request bodies: JSON only, parsed strictly once, before any handler sees them.

Litestar would parse any body as JSON whatever its Content-Type, keep the last of duplicate keys,
and fail with a RecursionError on deep nesting. Here a body must say it is JSON (which also keeps
browsers' form and text/plain posts from other sites out), must be UTF-8, must not repeat a key
in an object and must not be absurdly deep; the parsed value is handed to Litestar so it does not
parse the body again. The rules for the values themselves (types, lengths, stored JSON) are the
schemas'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, cast

from litestar._signature.types import ExtendedMsgSpecValidationError
from litestar.datastructures import Headers
from litestar.plugins.pydantic import PydanticInitPlugin
from litestar.plugins.pydantic.plugins.init import is_pydantic_v2_model_class
from litestar.types import Scope
from litestar.utils.scope.state import ScopeState
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from tracker_service.domain.common import unstorable_text
from tracker_service.errors import InvalidRequest, TrackerError


class UnsupportedMediaType(TrackerError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"


class DuplicateJsonKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise DuplicateJsonKey(repeated)
    return value


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        return False
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in params.split(";") if "=" in p), "utf-8")
    return charset in ("utf-8", "utf8")


# One decoder for every body: json.loads builds a new one per call when given hooks.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_not_a_number)


def parse_json_body(scope: Scope, headers: Headers, body: bytes) -> None:
    """Parse a non-empty body strictly and hand it to Litestar; raise a problem for anything else."""
    if not body:
        return
    if not is_json(headers.get("content-type")):
        raise UnsupportedMediaType(
            f"the body must be JSON sent as 'Content-Type: application/json' (UTF-8), not "
            f"{headers.get('content-type') or 'without a Content-Type'}; with curl use --json",
            errors=[{"field": "Content-Type", "message": "must be application/json", "source": "header"}],
        )
    try:
        text = body.decode("utf-8")
        value = _DECODER.decode(text)
    except UnicodeDecodeError as exc:
        raise _invalid(f"the body is not UTF-8 (byte {exc.start})") from None
    except DuplicateJsonKey as exc:
        raise _invalid(f"the key {str(exc)[:100]!r} appears twice in one JSON object", field=str(exc)[:100]) from None
    except RecursionError:
        raise _invalid("the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise _invalid(f"the body is not valid JSON: {exc}") from None
    if _ESCAPES_TO_CHECK.search(text):
        _check_text(value)
    state = ScopeState.from_scope(scope)
    state.body = body
    state.json = value


# Only escapes can put these in a string (raw control characters are not valid JSON): a NUL, which
# PostgreSQL cannot store in text or jsonb, and lone UTF-16 surrogates, which are not characters.
_ESCAPES_TO_CHECK = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _check_text(value: Any) -> None:
    """Name the first field whose text (or key) has a NUL or a lone surrogate."""
    found = unstorable_text(value, "body")
    if found is not None:
        path, problem = found
        raise _invalid(f"{path} {problem}", field=path)


def _invalid(detail: str, field: str = "body") -> InvalidRequest:
    return InvalidRequest(detail, errors=[{"field": field, "message": detail, "source": "body"}])


def _validate_by_model_config(model_type: type[BaseModel], value: Any) -> BaseModel:
    try:
        return model_type.model_validate(value)  # no strict= argument: the model's config decides
    except PydanticValidationError as exc:
        raise ExtendedMsgSpecValidationError(errors=cast(Any, exc.errors(include_input=False))) from exc


class ValidateByModelConfig(PydanticInitPlugin):
    """Litestar's Pydantic plugin, except that bodies are validated as each model's config says.

    The stock plugin passes strict=False (or True) to every model_validate, overriding the model:
    request models are strict (domain.common.StrictModel) while dates and UUIDs still come as text.
    """

    @classmethod
    def decoders(cls, validate_strict: bool = False) -> list[tuple[Callable[[Any], bool], Callable[[Any, Any], Any]]]:
        return [(is_pydantic_v2_model_class, _validate_by_model_config)]
