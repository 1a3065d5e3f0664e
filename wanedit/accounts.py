"""Provider accounts: each has its own key, base URL, limits, price and provider time zone.

Each account is one Alibaba Cloud main account: the provider's limits (5 tasks at once, 5
creates/s, 20 queries/s) are per main account, summed over all its keys and workspaces. Two
keys of one main account are one account here, or they would each be given the whole quota.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from wanedit.errors import ConfigError
from wanedit.provider_time import BEIJING_UTC_OFFSET

SINGAPORE_BASE_URL = "https://dashscope-intl.aliyuncs.com/api/v1"
# Price per image (CNY) from docs/dashscope.md, by region; only successful images are billed.
PRICE_SINGAPORE = 0.220177
PRICE_BEIJING = 0.20
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


# The provider's hosts, by region: keys and hosts of two regions do not mix (cross-region
# calls fail authentication).
REGIONS = {
    "dashscope.aliyuncs.com": "Beijing (cn-beijing)",
    "dashscope-intl.aliyuncs.com": "Singapore (ap-southeast-1)",
}


def region_of(base_url: str) -> str:
    """The region a base URL's host serves, or the host itself when it is neither's."""
    host = urlsplit(base_url).hostname or base_url
    region = REGIONS.get(host)
    return f"{region}, {host}" if region else f"host {host}"


def explain(code: str, message: str, base_url: str) -> str:
    """The provider's message, with what an operator needs to fix an invalid key: which
    region's endpoint refused it. Never the key."""
    if code != "InvalidApiKey":
        return message
    return (
        f"{message} The key was refused by the {region_of(base_url)} endpoint "
        "(DASHSCOPE_HTTP_BASE_URL, or the account's base_url); keys and endpoints of Beijing "
        "and Singapore do not mix: use a key made in the endpoint's region."
    )


def check_base_url(value: str) -> str:
    value = value.rstrip("/")
    if not value.startswith(("https://", "http://")) or not value.endswith("/api/v1"):
        raise ValueError(
            f"must be a full http(s) base ending in /api/v1, like {SINGAPORE_BASE_URL}"
        )
    return value


def default_price(base_url: str) -> float:
    return PRICE_BEIJING if "//dashscope.aliyuncs.com" in base_url else PRICE_SINGAPORE


class Account(BaseModel):
    """One Alibaba Cloud account: limits are per account, summed over all its keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "default"
    api_key: SecretStr | None = None
    base_url: str = SINGAPORE_BASE_URL
    concurrency: int = Field(5, ge=1, le=1000)
    submit_rate: float = Field(5.0, gt=0, le=1000)
    query_rate: float = Field(20.0, gt=0, le=1000)
    price_per_image: float | None = Field(None, ge=0)
    currency: str = "CNY"
    # Hours east of UTC of the provider's time strings; None: WANEDIT_PROVIDER_UTC_OFFSET.
    utc_offset: float | None = Field(None, ge=-14, le=14)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("an account name is 1-32 of a-z, 0-9, '-' and '_'")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @property
    def price(self) -> float:
        return (
            default_price(self.base_url) if self.price_per_image is None else self.price_per_image
        )

    @property
    def provider_utc_offset(self) -> float:
        """The zone of this account's provider times (Beijing, UTC+8, unless set)."""
        return BEIJING_UTC_OFFSET if self.utc_offset is None else self.utc_offset

    def key(self) -> str:
        """The provider key, for the HTTP client only; never logged or stored."""
        if self.api_key is None or not self.api_key.get_secret_value():
            source = "DASHSCOPE_API_KEY" if self.name == "default" else f"account {self.name!r}"
            raise ConfigError(
                f"{source} is not set: the workers need a Model Studio API key to call the provider"
            )
        return self.api_key.get_secret_value()
