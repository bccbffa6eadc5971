r"""Request bodies as documented: each body model's own JSON Schema, as pydantic validates it.

Litestar documents a pydantic model from its fields with its own generator, which loses what the
validators enforce: extra="forbid", bounds inside Optional, patterns given as json_schema_extra,
the names of AliasChoices. pydantic's generator (mode="validation") keeps all of them, and a
model states the rules of its model validators in its `json_schema_extra`. This generator adds
what the request path enforces around pydantic, for every model alike:

- No request body may hold a NUL (web/body.py refuses it before validation): strings and object
  keys without a pattern of their own (the models' patterns exclude NUL already) say so, and a
  field taking any JSON value (StoredJson) is the recursive, NUL-free JsonValue. It is said as
  `not: {pattern: "\x00"}`: "^[^\x00]*$" means the same, but schemathesis generates strings
  for it next to a large maxLength about 30 times slower.
- A field that answers to several names (AliasChoices, populate_by_name) lists them all; one of
  them may be given, not two (the second is an unknown field).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import Annotated, Any, Union

from pydantic import AliasChoices, BaseModel, StringConstraints, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema
from typing_extensions import TypeAliasType

from tracker_service.domain.common import MAX_JSON_BYTES

NO_NUL: dict[str, Any] = {"not": {"pattern": r"\x00"}}
REF_TEMPLATE = "#/components/schemas/{model}"

# Any JSON value, as a stored value may be (domain.common.StoredJson). Its size and depth limits
# are said in the fields' descriptions: JSON Schema has no word for them.
_JsonText = Annotated[str, StringConstraints(max_length=MAX_JSON_BYTES)]
# mypy cannot follow a recursive TypeAliasType.
JsonValue = TypeAliasType(  # type: ignore[misc]
    "JsonValue",
    Union[dict[_JsonText, "JsonValue"], list["JsonValue"], _JsonText, float, bool, None],  # type: ignore[misc]  # noqa: UP007
)
_JSON_VALUE = TypeAdapter(JsonValue).core_schema


class RequestSchema(GenerateJsonSchema):
    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if "pattern" not in json_schema:
            json_schema.update(NO_NUL)
        return json_schema

    def any_schema(self, schema: core_schema.AnySchema) -> JsonSchemaValue:
        return self.generate_inner(_JSON_VALUE)

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        names = json_schema.setdefault("propertyNames", {})
        if "pattern" not in names:
            names.update(NO_NUL)
        return json_schema

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        model: type[BaseModel] = schema["cls"]
        for name, field in model.model_fields.items():
            names = _names_of(model, name, field.validation_alias)
            if len(names) < 2:
                continue
            properties, required = json_schema["properties"], json_schema.get("required", [])
            given = next(n for n in names if n in properties)
            for other in names:
                properties.setdefault(other, properties[given])
            rules: list[dict[str, Any]] = [
                {"not": {"anyOf": [{"required": list(pair)} for pair in combinations(names, 2)]}}
            ]
            if given in required:
                required.remove(given)
                rules.append({"anyOf": [{"required": [n]} for n in names]})
            json_schema.setdefault("allOf", []).extend(rules)
        if "required" in json_schema and not json_schema["required"]:
            del json_schema["required"]
        return json_schema


def _names_of(model: type[BaseModel], name: str, alias: Any) -> list[str]:
    """Every key a field is read from."""
    names = [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
    if isinstance(alias, str):
        names = [alias]
    if not names or model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name"):
        names.append(name)
    return list(dict.fromkeys(names))


def body_schemas(models: Iterable[type[BaseModel]]) -> tuple[dict[type[BaseModel], JsonSchemaValue], JsonSchemaValue]:
    """A reference for each model, and the definitions they use (for components/schemas)."""
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(
        [(model, "validation") for model in unique], ref_template=REF_TEMPLATE, schema_generator=RequestSchema
    )
    return {model: refs[(model, "validation")] for model in unique}, top.get("$defs", {})
