"""A mirror's own policy (seed 002: ``--use-channel-policy False --policy-id ID``,
``--cve_score``, ``--exclude_uncurated_cve_packages``), judged by the policy plugin's engine.

The engine is reached through the hook the policy plugin offers (``repoproxy_policy_judge``),
never by importing that plugin: a mirror without its own policy works without it, one with its
own policy says plainly that it needs it. ``--licenses`` and ``--date_from/--date_to`` are the
mirror's own filters (filters.py), applied before this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repoproxy.errors import RepoproxyError
from repoproxy.models import Channel, PackageRecord

from .model import Mirror

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


class PolicyUnavailable(RepoproxyError):
    status = 422
    code = "policy-plugin-missing"


def own_filters(mirror: Mirror) -> dict[str, Any]:
    """The mirror's CVE options as policy filters (docs/policies.md: a package is kept when
    every CVE's score is <= ``cve_score``)."""
    out: dict[str, Any] = {}
    if mirror.cve_score is not None:
        out["cve_score"] = mirror.cve_score
    if mirror.exclude_uncurated_cve_packages:
        out["exclude_uncurated_cve_packages"] = True
    return out


def own_policy_id(mirror: Mirror) -> str | None:
    """The stored policy the mirror uses instead of its channel's, if any."""
    return mirror.policy_id if not mirror.use_channel_policy else None


def has_own_policy(mirror: Mirror) -> bool:
    return bool(own_filters(mirror)) or own_policy_id(mirror) is not None


def _judge(core: Core) -> Any:
    hook = getattr(core.pm.hook, "repoproxy_policy_judge", None)
    if hook is None or not hook.get_hookimpls():
        raise PolicyUnavailable("a mirror's own policy (--policy-id, --cve_score, "
                                "--exclude_uncurated_cve_packages) needs the repoproxy_policy "
                                "plugin, which is not enabled")
    return hook


def check(core: Core, mirror: Mirror, channel: Channel) -> None:
    """At create/update: the policy exists, the filters are valid, the engine is there."""
    if has_own_policy(mirror):
        _judge(core)(services=core, channel=channel, records=[],
                     policy=own_policy_id(mirror), filters=own_filters(mirror))


def hidden(core: Core, mirror: Mirror, channel: Channel, subdir: str,
           records: dict[str, dict[str, Any]]) -> set[str]:
    """File names of ``records`` (one subdir's upstream records) the mirror's own policy
    leaves out."""
    if not has_own_policy(mirror) or not records:
        return set()
    candidates = [as_record(channel.name, subdir, fn, rec) for fn, rec in records.items()]
    judged = _judge(core)(services=core, channel=channel, records=candidates,
                          policy=own_policy_id(mirror), filters=own_filters(mirror)) or {}
    return {fn for (sd, fn) in judged if sd == subdir}


def as_record(channel: str, subdir: str, fn: str, rec: dict[str, Any]) -> PackageRecord:
    """An upstream record as the core's record type, which policies judge."""
    def text(key: str) -> str:
        value = rec.get(key)
        return value if isinstance(value, str) else ""

    ts = rec.get("timestamp")
    return PackageRecord(
        channel=channel, subdir=subdir, filename=fn, name=text("name"), version=text("version"),
        build=text("build"), build_number=int(rec.get("build_number") or 0),
        size=int(rec.get("size") or 0), sha256=text("sha256"), md5=text("md5"),
        indexed_timestamp=int(ts if ts and ts > 1e11 else (ts or 0) * 1000)
        if isinstance(ts, (int, float)) else 0,
        record=rec, about={"license": rec.get("license")} if rec.get("license") else {},
    )
