"""Listen rules: which uploaded objects become which edits (WANEDIT_LISTEN_RULES, a JSON list,
and WANEDIT_RULES_FILE, a TOML file of `[[rule]]` tables: two spellings of the same rules)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from wanedit.errors import ConfigError, InvalidRequest
from wanedit.request import parse_request
from wanedit.storage import S3Location

# Set by the listener for each object, never by a rule.
_RESERVED = ("idempotency_key",)


class ListenRule(BaseModel):
    """Objects in `bucket` whose key starts with `prefix` and ends with `suffix` are edited with
    the rule's request fields (`prompt`, `n`, `size`, ...) and written under `output`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    bucket: str = Field(min_length=1)
    prefix: str = ""
    suffix: str = ""
    output: str

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        return str(S3Location.parse_prefix(value))

    @model_validator(mode="after")
    def _template(self) -> ListenRule:
        for name in _RESERVED:
            if name in self.template:
                raise ValueError(f"{name}: is set by the listener for each event, not by a rule")
        try:
            # The uploaded object is Image 1; a rule may name further reference images.
            parse_request(self.request_for(f"s3://{self.bucket}/example.png", "listen-check"))
        except InvalidRequest as exc:
            raise ValueError("; ".join(exc.problems)) from None
        return self

    @property
    def template(self) -> dict[str, Any]:
        """The rule's edit request fields other than the object it reacts to."""
        return dict(self.model_extra or {})

    def matches(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix) and key.endswith(self.suffix)

    def request_for(self, source: str, idempotency_key: str) -> dict[str, Any]:
        """The edit request for one object."""
        template = self.template
        return {
            **template,
            "images": [source, *template.get("images", [])],
            "output": self.output,
            "idempotency_key": idempotency_key,
        }


RULES_FILE_SETTING = "WANEDIT_RULES_FILE"
JSON_RULES_SETTING = "WANEDIT_LISTEN_RULES"


def load_rules_file(path: str | Path) -> list[ListenRule]:
    """The `[[rule]]` tables of a TOML file as listen rules, checked as WANEDIT_LISTEN_RULES'
    are; a missing or unreadable file, bad TOML or a bad rule is a ConfigError naming the file,
    the rule's index and field."""
    where = f"{RULES_FILE_SETTING} {path}"
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not valid TOML (not UTF-8 text)") from None
    unknown = sorted(set(data) - {"rule"})
    if unknown:
        raise ConfigError(
            f"{where}: {unknown[0]}: is not a rule; the file holds only [[rule]] tables"
        )
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{where}: rule: must be [[rule]] tables, not a single value")
    rules = []
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: rule[{index}]: must be a [[rule]] table")
        try:
            rules.append(ListenRule.model_validate(table))
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_problems(index, exc)}") from None
    return rules


def _problems(index: int, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        path = f"rule[{index}]" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        )
        problems.append(f"{path}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def merge_rules(
    from_json: list[ListenRule], from_file: list[ListenRule], path: str | Path
) -> list[ListenRule]:
    """WANEDIT_LISTEN_RULES and then the file's rules; a rule given twice (the same fields
    and values, in either place) is refused: it would only make the same edit again."""
    # Compared by value, not hashed: a rule's fields may hold lists and objects.
    seen = [(rule, f"{JSON_RULES_SETTING}[{index}]") for index, rule in enumerate(from_json)]
    for index, rule in enumerate(from_file):
        for other, label in seen:
            if rule == other:
                raise ConfigError(
                    f"{RULES_FILE_SETTING} {path}: rule[{index}]: the same rule as {label}; "
                    "give each rule once"
                )
        seen.append((rule, f"{RULES_FILE_SETTING} rule[{index}]"))
    return [*from_json, *from_file]
