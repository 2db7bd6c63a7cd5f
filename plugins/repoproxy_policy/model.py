"""A policy's filters: names, types, parsing and the edit semantics of seed 002.

Every filter has a storage key (``platform_not``), a CLI option (``--platform-not``) and an API
key (the storage key). Editing a filter replaces its old value; an empty string (or JSON
``null``) clears it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from repoproxy.errors import RepoproxyError

from .licenses import canonical_family

PLATFORMS = ("noarch", "linux-32", "linux-64", "linux-aarch64", "linux-armv6l", "linux-armv7l",
             "linux-ppc64", "linux-ppc64le", "linux-s390x", "osx-64", "osx-arm64", "win-32",
             "win-64", "win-arm64", "zos-z", "zos-znoarch", "emscripten-wasm32", "wasi-wasm32",
             "linux-riscv64")
CVE_STATUSES = ("active", "reported", "mitigated", "cleared", "disputed")
COMPARATORS = ("==", "<=", ">=", "<", ">")

LIST_FILTERS = ("platform", "platform_not", "license", "license_not", "package_name",
                "exclude_package_name", "exclude_package_name_exception", "cve_status",
                "exclude_cve_status", "cve_allowlist")
BOOL_FILTERS = ("include_dependencies", "exclude_dependencies", "only_signed_packages",
                "keep_legacy_packages", "exclude_uncurated_cve_packages")
DATE_FILTERS = ("package_created_from", "package_created_to")
OTHER_FILTERS = ("cve_score", "cve_score_comparator", "cve_link_status_and_score")
FILTERS = LIST_FILTERS + BOOL_FILTERS + DATE_FILTERS + OTHER_FILTERS
DEFAULTS: dict[str, Any] = {"cve_score_comparator": "<=", "cve_link_status_and_score": "and"}
CVE_FILTERS = ("cve_score", "cve_status", "exclude_cve_status", "exclude_uncurated_cve_packages")


class PolicyError(RepoproxyError):
    status = 400
    code = "invalid-policy"


class PolicyNotFound(RepoproxyError):
    status = 404
    code = "not-found"


@dataclass
class Policy:
    id: int
    name: str
    description: str = ""
    filters: dict[str, Any] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)
    created: str = ""
    updated: str = ""

    def get(self, key: str) -> Any:
        return self.filters.get(key, DEFAULTS.get(key))

    @property
    def uses_cves(self) -> bool:
        return any(self.filters.get(k) not in (None, [], False) for k in CVE_FILTERS)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description,
                "filters": {k: self.get(k) for k in FILTERS if self.get(k) is not None},
                "channels": list(self.channels), "created": self.created,
                "updated": self.updated}


def _split(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise PolicyError(f"expected a comma-separated string or a list, got {value!r}")
    return [str(v).strip() for v in value if str(v).strip()]


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise PolicyError(f"{key}: expected true or false, got {value!r}")


def parse_filter(key: str, value: Any) -> Any:
    """One filter's value, checked; ``None`` means "clear this filter"."""
    if value is None or value == "" or value == []:
        return None
    if key in LIST_FILTERS:
        items = _split(value)
        if key in ("platform", "platform_not"):
            bad = [p for p in items if p not in PLATFORMS]
            if bad:
                raise PolicyError(f"{key}: unknown platform {', '.join(bad)}")
        elif key in ("license", "license_not"):
            try:
                items = [canonical_family(v) for v in items]
            except ValueError as e:
                raise PolicyError(f"{key}: {e}") from None
        elif key in ("cve_status", "exclude_cve_status"):
            items = [v.lower() for v in items]
            bad = [v for v in items if v not in CVE_STATUSES]
            if bad:
                raise PolicyError(f"{key}: unknown CVE status {', '.join(bad)}; use "
                                  + ", ".join(CVE_STATUSES))
        elif key == "cve_allowlist":
            items = [v.upper() for v in items]
        return items or None
    if key in BOOL_FILTERS:
        flag = _bool(key, value)
        if key == "only_signed_packages" and flag:
            raise PolicyError("only_signed_packages is not supported yet: package signing is "
                              "not built; this filter will come with it")
        return flag or None
    if key in DATE_FILTERS:
        try:
            datetime.date.fromisoformat(str(value))
        except ValueError:
            raise PolicyError(f"{key}: expected a date YYYY-MM-DD, got {value!r}") from None
        return str(value)
    if key == "cve_score":
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise PolicyError(f"cve_score: expected a number 0-10, got {value!r}") from None
        if not 0 <= score <= 10:
            raise PolicyError(f"cve_score: expected a number 0-10, got {value!r}")
        return score
    if key == "cve_score_comparator":
        if value not in COMPARATORS:
            raise PolicyError(f"cve_score_comparator: use one of {' '.join(COMPARATORS)}")
        return value
    if key == "cve_link_status_and_score":
        if str(value).lower() not in ("and", "or"):
            raise PolicyError("cve_link_status_and_score: use and or or")
        return str(value).lower()
    raise PolicyError(f"unknown filter {key!r}")


def merge_filters(old: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Seed 002's edit: a given filter replaces the old value, an empty one clears it."""
    unknown = set(changes) - set(FILTERS)
    if unknown:
        raise PolicyError(f"unknown filter(s): {', '.join(sorted(unknown))}")
    out = dict(old)
    for key, value in changes.items():
        parsed = parse_filter(key, value)
        if parsed is None:
            out.pop(key, None)
        else:
            out[key] = parsed
    if out.get("include_dependencies") and out.get("exclude_dependencies"):
        raise PolicyError("include_dependencies and exclude_dependencies exclude each other")
    return out
