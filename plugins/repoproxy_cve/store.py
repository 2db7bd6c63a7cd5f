"""The CVE plugin's tables (``Migrations("repoproxy_cve")``) and their only SQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database, Migrations

from repoproxy.errors import NotFound, RepoproxyError
from repoproxy.storage.db import write_transaction

migrations = Migrations("repoproxy_cve")
STATUSES = ("active", "reported", "mitigated", "cleared", "disputed")


class InvalidCveData(RepoproxyError):
    status = 400
    code = "invalid-cve-data"


@migrations()
def m001_cves(db: Database) -> None:
    db.table("cves").create(
        {"id": str, "score": float, "status": str, "type": str, "description": str,
         "published": str, "modified": str, "cvss2": str, "cvss3": str, "aliases": str,
         "source": str}, pk="id",
    )
    # ecosystem "conda" (name = conda package name) or "pypi" (name = normalised PyPI name);
    # ranges: OSV events [{"introduced"|"fixed"|"last_affected": v}] or a conda version spec
    db.table("cve_affected").create(
        {"cve_id": str, "ecosystem": str, "name": str, "ranges": str, "versions": str,
         "spec": str}, foreign_keys=[("cve_id", "cves", "id")],
    )
    db.table("cve_affected").create_index(["ecosystem", "name"])
    db.table("cve_affected").create_index(["cve_id"])


@migrations()
def m002_cvss4(db: Database) -> None:
    db.table("cves").add_column("cvss4", str)


class CveStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, records: Iterable[dict[str, Any]],
               audit: Callable[[Database, int, int], None] | None = None) -> tuple[int, int]:
        """Insert or update CVEs with their affected packages; (new, updated).

        An imported record without a status keeps the curation status already set.
        ``audit(db, new, updated)`` writes the import's audit row in its transaction.
        """
        new = updated = 0
        with write_transaction(self.db):
            for rec in records:
                old = self.db.execute("SELECT status FROM cves WHERE id = ?",
                                      [rec["id"]]).fetchone()
                status = rec.get("status") or (old[0] if old else None)
                row = {k: rec.get(k) for k in ("id", "score", "type", "description",
                                                "published", "modified", "cvss2", "cvss3",
                                                "cvss4", "source")}
                row["status"] = status
                row["aliases"] = json.dumps(rec.get("aliases") or [])
                cols = ", ".join(row)
                # column names are this module's constants, values are bound
                self.db.execute(f"INSERT OR REPLACE INTO cves ({cols}) VALUES "  # noqa: S608
                                f"({', '.join('?' for _ in row)})", list(row.values()))
                self.db.execute("DELETE FROM cve_affected WHERE cve_id = ?", [rec["id"]])
                for aff in rec.get("affected", ()):
                    self.db.execute(
                        "INSERT INTO cve_affected (cve_id, ecosystem, name, ranges, versions, "
                        "spec) VALUES (?, ?, ?, ?, ?, ?)",
                        [rec["id"], aff["ecosystem"], aff["name"],
                         json.dumps(aff.get("ranges") or []),
                         json.dumps(aff.get("versions") or []), aff.get("spec")])
                if old:
                    updated += 1
                else:
                    new += 1
            if audit is not None:
                audit(self.db, new, updated)
        return new, updated

    def set_status(self, cve_id: str, status: str | None,
                   audit: Callable[[Database], None] | None = None) -> None:
        if status is not None and status not in STATUSES:
            raise InvalidCveData(f"unknown status {status!r}; use {', '.join(STATUSES)}")
        with write_transaction(self.db):
            cur = self.db.execute("UPDATE cves SET status = ? WHERE id = ?", [status, cve_id])
            if not cur.rowcount:
                raise NotFound(f"CVE {cve_id!r} not found")
            if audit is not None:
                audit(self.db)

    def get(self, cve_id: str) -> dict[str, Any]:
        rows = list(self.db.table("cves").rows_where("id = ?", [cve_id.upper()]))
        if not rows:
            rows = list(self.db.table("cves").rows_where("id = ?", [cve_id]))
        if not rows:
            raise NotFound(f"CVE {cve_id!r} not found")
        return dict(rows[0], aliases=json.loads(rows[0]["aliases"] or "[]"))

    def all(self) -> list[dict[str, Any]]:
        return [dict(r, aliases=json.loads(r["aliases"] or "[]"))
                for r in self.db.table("cves").rows_where(order_by="id")]

    def affected(self, ecosystem: str | None = None, names: Iterable[str] | None = None,
                 cve_id: str | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        if ecosystem:
            where.append("a.ecosystem = ?")
            args.append(ecosystem)
        if cve_id:
            where.append("a.cve_id = ?")
            args.append(cve_id)
        if names is not None:
            names = list(names)
            where.append(f"a.name IN ({', '.join('?' for _ in names)})")
            args += names
        sql = ("SELECT a.cve_id, a.ecosystem, a.name, a.ranges, a.versions, a.spec, c.score, "
               "c.status FROM cve_affected a JOIN cves c ON c.id = a.cve_id")
        if where:
            sql += " WHERE " + " AND ".join(where)  # constant clauses, values are bound
        cols = ("cve_id", "ecosystem", "name", "ranges", "versions", "spec", "score", "status")
        return [dict(zip(cols, row, strict=True)) for row in self.db.execute(sql, args)]
