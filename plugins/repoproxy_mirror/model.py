"""A mirror's definition (seed 002's ``conda repo mirror`` options), parsed and validated.

Pure data and checks: no I/O. The service stores what :func:`parse` returns.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from repoproxy.errors import RepoproxyError
from repoproxy.names import is_subdir

MODES = ("active", "passive")
TYPES = ("conda",)
#: the seed's other types: named so that the refusal says plainly what is missing
OTHER_TYPES = ("python_simple", "cran")
STATES = ("created", "pending", "running", "stopping", "stopped", "completed", "failed")
NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
SPEC_LISTS = ("only_specs", "exclude_specs", "include_specs")


class InvalidMirror(RepoproxyError):
    status = 400
    code = "invalid-mirror"


class MirrorTypeUnsupported(RepoproxyError):
    status = 422
    code = "unsupported-mirror-type"


@dataclass
class Mirror:
    id: str
    name: str
    channel: str
    mode: str
    source: str
    type: str = "conda"
    subdirs: list[str] = field(default_factory=list)
    only_specs: list[str] = field(default_factory=list)
    only_spec_dependencies: bool = False
    exclude_specs: list[str] = field(default_factory=list)
    include_specs: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    cve_score: float | None = None
    exclude_uncurated_cve_packages: bool = False
    date_from: str | None = None
    date_to: str | None = None
    cron: str | None = None
    use_channel_policy: bool = True
    policy_id: str | None = None
    state: str = "created"
    created: str = ""
    updated: str = ""
    last_run_at: str | None = None
    last_error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["filters"] = {k: data.pop(k) for k in FILTER_KEYS}
        return data


FILTER_KEYS = ("subdirs", "only_specs", "only_spec_dependencies", "exclude_specs",
               "include_specs", "licenses", "cve_score", "exclude_uncurated_cve_packages",
               "date_from", "date_to")
#: what create/update accept (API body keys; the CLI maps its flags onto them)
SETTABLE = ("mode", "type", "source", "cron", "use_channel_policy", "policy_id", *FILTER_KEYS)


def _list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise InvalidMirror(f"{key} must be a list of strings or a comma-separated string")


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    raise InvalidMirror(f"{key} must be True or False")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidMirror(f"invalid mirror name {name!r}: letters, digits, '_', '.', '-' "
                            "(at most 64, not starting with '.' or '-')")
    return name


def check_source(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidMirror("source is required: the URL of the upstream channel")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidMirror(f"source must be an http(s) URL of a conda channel, not {url!r}")
    # secrets never enter the catalog: they would be shown by --show and in the audit log
    if parts.username or parts.password or "/t/" in parts.path + "/":
        raise InvalidMirror("source must not carry credentials; set them in "
                            "repoproxy_mirror.credentials (docs/mirrors.md)")
    return url.strip().rstrip("/")


def check_specs(specs: list[str], key: str) -> list[str]:
    from rattler import MatchSpec  # on first use: `repoproxy --help` must stay instant

    for spec in specs:
        try:
            MatchSpec(spec)
        except Exception as e:  # rattler's InvalidMatchSpecError
            raise InvalidMirror(f"{key}: {spec!r} is not a valid MatchSpec: "
                                f"{str(e).splitlines()[0]}") from None
    return specs


def check_cron(expr: Any) -> str | None:
    if expr in (None, ""):
        return None
    from croniter import croniter

    if not isinstance(expr, str) or not croniter.is_valid(expr):
        raise InvalidMirror(f"cron {expr!r} is not a valid cron expression (e.g. '0 0 * * *')")
    return expr


def _date(value: Any, key: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InvalidMirror(f"{key} must be a date YYYY-MM-DD, not {value!r}") from None


def parse(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validated fields from an API body or CLI flags; every key is optional on update."""
    unknown = set(body) - set(SETTABLE)
    if unknown:
        raise InvalidMirror(f"unknown mirror field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    kind = str(body.get("type") or "conda").strip().lower()
    if kind in OTHER_TYPES:
        raise MirrorTypeUnsupported(f"mirror type {kind!r} is not supported: repoproxy mirrors "
                                    "conda channels only (--type conda)")
    if kind not in TYPES:
        raise InvalidMirror(f"unknown mirror type {kind!r}: use conda")
    if creating or "type" in body:
        out["type"] = kind
    if creating or "mode" in body:
        mode = body.get("mode")
        if mode not in MODES:
            raise InvalidMirror(f"mode must be active or passive, not {mode!r}")
        out["mode"] = mode
    if creating or "source" in body:
        out["source"] = check_source(body.get("source"))
    if "subdirs" in body:
        subdirs = _list(body["subdirs"], "subdirs")
        bad = [s for s in subdirs if not is_subdir(s)]
        if bad:
            raise InvalidMirror(f"not a subdir: {', '.join(bad)}")
        out["subdirs"] = subdirs
    for key in SPEC_LISTS:
        if key in body:
            out[key] = check_specs(_list(body[key], key), key)
    if "licenses" in body:
        out["licenses"] = [v.lower() for v in _list(body["licenses"], "licenses")]
    if "cve_score" in body:
        score = body["cve_score"]
        if score in (None, ""):
            out["cve_score"] = None
        else:
            try:
                out["cve_score"] = float(score)
            except (TypeError, ValueError):
                raise InvalidMirror("cve_score must be a number from 0 to 10") from None
            if not 0 <= out["cve_score"] <= 10:
                raise InvalidMirror("cve_score must be a number from 0 to 10")
    for key in ("exclude_uncurated_cve_packages", "use_channel_policy",
                "only_spec_dependencies"):
        if key in body:
            out[key] = _bool(body[key], key)
    for key in ("date_from", "date_to"):
        if key in body:
            out[key] = _date(body[key], key)
    if "cron" in body:
        out["cron"] = check_cron(body["cron"])
    if "policy_id" in body:
        out["policy_id"] = None if body["policy_id"] in (None, "") else str(body["policy_id"])
    return out


def check_closure(mirror: Mirror) -> None:
    if mirror.only_spec_dependencies and mirror.mode != "active":
        raise InvalidMirror("only_spec_dependencies applies to active mirrors only: a proxy "
                            "builds each subdir's index on its own, a closure needs them all")


def check_dates(date_from: str | None, date_to: str | None) -> None:
    """The seed's rule: from before to, at most one year apart."""
    if date_from and date_to:
        a, b = date.fromisoformat(date_from), date.fromisoformat(date_to)
        if a > b:
            raise InvalidMirror("date_from must be earlier than date_to")
        if (b - a).days > 366:
            raise InvalidMirror("date_from and date_to may be at most one year apart")
