"""SQL of the ``artifacts`` table (generic artifacts and notebooks). Callers hold the write
transaction; the application layer (:mod:`repoproxy.domain.artifacts`) owns the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

COLUMNS = ("channel", "name", "version", "filename", "kind", "size", "sha256", "md5",
           "description", "uploader", "uploaded_at")


@dataclass(frozen=True)
class ArtifactRecord:
    channel: str
    name: str
    version: str
    filename: str
    kind: str  # "notebook" for .ipynb files, else "file"
    size: int
    sha256: str
    md5: str
    description: str
    uploader: str
    uploaded_at: str

    @property
    def path(self) -> str:
        return f"{self.name}/{self.version}/{self.filename}"

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in COLUMNS}


def _record(row: Any) -> ArtifactRecord:
    return ArtifactRecord(**dict(zip(COLUMNS, row, strict=True)))


class Artifacts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _select(self, where: str, args: list[Any]) -> list[ArtifactRecord]:
        sql = (f"SELECT {', '.join(COLUMNS)} FROM artifacts WHERE {where} "  # noqa: S608
               "ORDER BY name, version, filename")
        return [_record(r) for r in self.db.execute(sql, args).fetchall()]

    def get(self, channel: str, name: str, version: str, filename: str) -> ArtifactRecord | None:
        rows = self._select("channel = ? AND name = ? AND version = ? AND filename = ?",
                            [channel, name, version, filename])
        return rows[0] if rows else None

    def of_channel(self, channel: str, name: str | None = None) -> list[ArtifactRecord]:
        if name is None:
            return self._select("channel = ?", [channel])
        return self._select("channel = ? AND name = ?", [channel, name])

    def search(self, channel: str, q: str) -> list[ArtifactRecord]:
        return self._select("channel = ? AND instr(lower(name), ?) > 0", [channel, q])

    def count(self, channel: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM artifacts WHERE channel = ?",
                              [channel]).fetchone()
        return int(row[0])

    def blob_users(self, channel: str, sha256: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM artifacts WHERE channel = ? AND sha256 = ?",
                              [channel, sha256]).fetchone()
        return int(row[0])

    def put(self, rec: ArtifactRecord) -> None:
        self.db.execute(
            f"INSERT OR REPLACE INTO artifacts ({', '.join(COLUMNS)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(COLUMNS))})",
            [getattr(rec, k) for k in COLUMNS])

    def delete(self, rec: ArtifactRecord) -> None:
        self.db.execute(
            "DELETE FROM artifacts WHERE channel = ? AND name = ? AND version = ? "
            "AND filename = ?", [rec.channel, rec.name, rec.version, rec.filename])
