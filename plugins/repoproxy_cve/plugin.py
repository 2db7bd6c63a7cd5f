"""The CVE plugin's hook implementations and the operations its CLI and API share.

It implements ``repoproxy_cve_facts`` declared by ``repoproxy_policy`` (``optionalhook``: it
works without the policy plugin) and fires ``repoproxy_cve_data_changed`` after an import or a
curation change, if some plugin declared it. It never imports ``repoproxy_policy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repoproxy import hookimpl
from repoproxy.models import Channel, PackageRecord
from repoproxy.plugins import notify

# the store (sqlite-utils), the matcher (rattler) and the importer load on first use, not with
# the plugin: `repoproxy --help` loads every plugin and must stay instant
if TYPE_CHECKING:
    from sqlite_utils import Database

    from repoproxy.domain.audit import Actor
    from repoproxy.domain.core import Core
    from repoproxy.domain.reads import ReadModel

    from .store import CveStore

#: the actor of commands run on the server root (repoproxy.domain.audit.CLI, not imported at
#: plugin load: ``repoproxy --help`` loads no database code)
CLI = "cli"


def cve_store(services: Core) -> CveStore:
    from .store import CveStore

    return CveStore(services.db())


def _changed(services: Core) -> None:
    if hasattr(services.pm.hook, "repoproxy_cve_data_changed"):
        notify(services.pm, "repoproxy_cve_data_changed", services=services)


def import_path(services: Core, path: Path, *, actor: Actor = CLI) -> dict[str, int]:
    """Import CVE records, with one audit row in the import's transaction."""
    from repoproxy.domain.audit import audit as write_audit

    from .importer import read_records

    records = read_records(path)

    def audit(db: Database, new: int, updated: int) -> None:
        write_audit(db, actor, "cve.import", None, path.name, records=len(records), new=new,
                    updated=updated)

    new, updated = cve_store(services).upsert(records, audit=audit)
    _changed(services)
    return {"records": len(records), "new": new, "updated": updated}


def set_status(services: Core, cve_id: str, status: str | None, *,
               actor: Actor = CLI) -> dict[str, Any]:
    """Set (or, with None, clear) a CVE's curation status, audited in the same transaction."""
    from repoproxy.domain.audit import audit as write_audit

    store = cve_store(services)
    cve = store.get(cve_id)

    def audit(db: Database) -> None:
        write_audit(db, actor, "cve.status", None, cve["id"], old=cve["status"] or "uncurated",
                    new=status or "uncurated")

    store.set_status(cve["id"], status, audit=audit)
    _changed(services)
    return store.get(cve_id)


def affected_files(services: Core, cve_id: str, reads: ReadModel | None = None) -> list[str]:
    """``channel/subdir/filename`` of every stored file the CVE affects; with ``reads``, only
    the files that read model shows (readable channels, no policy-hidden file)."""
    from .matching import facts_for

    store = cve_store(services)
    cve = store.get(cve_id)
    names = {r["name"] for r in store.affected(cve_id=cve["id"])}
    catalog = services.catalog()
    out = []
    # offline (no read model) every stored file counts, as it always did
    for channel in (reads.channels() if reads else catalog.list_channels()):
        records = reads.packages(channel) if reads else list(catalog.packages(channel.name))
        for (subdir, filename), facts in facts_for(store, records).items():
            if any(f["id"] == cve["id"] for f in facts):
                out.append(f"{channel.name}/{subdir}/{filename}")
    return sorted(out) if names else []


def summary(services: Core, cve: dict[str, Any]) -> dict[str, Any]:
    return {"id": cve["id"], "score": cve["score"], "type": cve["type"],
            "status": cve["status"] or "uncurated", "files": len(affected_files(services,
                                                                               cve["id"])),
            "description": (cve["description"] or "").splitlines()[0][:120]
            if cve["description"] else ""}


@hookimpl
def repoproxy_migrations() -> Any:
    from .store import migrations

    return migrations


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_cve.views")


@hookimpl
def repoproxy_register_commands(cli: Any) -> None:
    from .commands import cve, cves

    cli.add_command(cve)
    cli.add_command(cves)


@hookimpl(optionalhook=True)
def repoproxy_cve_facts(services: Core, channel: Channel, records: list[PackageRecord]
                        ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    from .matching import facts_for

    return facts_for(cve_store(services), records)


@hookimpl
def repoproxy_package_extra(request: Any, channel: Channel,
                            record: PackageRecord) -> dict[str, Any] | None:
    from .matching import facts_for

    facts = facts_for(cve_store(request.services), [record]).get(
        (record.subdir, record.filename), [])
    scores = [f["score"] for f in facts if f["score"] is not None]
    return {"cves": [{"id": f["id"], "score": f["score"], "status": f["status"] or "uncurated"}
                     for f in facts],
            "cve_score": max(scores) if scores else None}
