"""Read CVE data from files (no network): OSV JSON records and the curated format.

OSV: one JSON record per file, in a directory or a zip (as OSV publishes per ecosystem, e.g.
``PyPI/all.zip``). Curated (docs/policies.md): a JSON file
``{"format": "repoproxy-cve-v1", "cves": [{"id", "score", "status", "description",
"published", "affected": [{"name": <conda name>, "versions": <conda version spec>}]}]}``.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .store import STATUSES, InvalidCveData

CURATED = "repoproxy-cve-v1"
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

def cvss_score(vector: str) -> float | None:
    """The base score of a CVSS v2, v3.x or v4.0 vector (FIRST's specifications, computed by
    the ``cvss`` library); None if the text is not a well-formed vector."""
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    text = vector.strip()
    kind = CVSS4 if text.startswith("CVSS:4") else CVSS3 if text.startswith("CVSS:3") else CVSS2
    try:
        return float(kind(text).base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None


def cvss3_score(vector: str) -> float | None:
    """The base score of a CVSS v3.x vector; None if it is not one."""
    return cvss_score(vector) if vector.strip().startswith("CVSS:3") else None


def _vector_kind(severity: dict[str, Any]) -> str | None:
    """Which CVSS version an OSV ``severity`` entry carries: "cvss2", "cvss3", "cvss4"."""
    kind, text = str(severity.get("type", "")), str(severity.get("score", ""))
    if kind.startswith("CVSS_V4") or text.startswith("CVSS:4"):
        return "cvss4"
    if kind.startswith("CVSS_V3") or text.startswith("CVSS:3"):
        return "cvss3"
    if kind == "CVSS_V2":
        return "cvss2"
    return None


#: which vector gives the score when an advisory has several: v3 first (what score filters
#: have been set against), then the newer v4, then v2
SCORE_ORDER = ("cvss3", "cvss4", "cvss2")


def score_of(vectors: dict[str, str | None]) -> float | None:
    for kind in SCORE_ORDER:
        text = vectors.get(kind)
        if text and (score := cvss_score(text)) is not None:
            return score
    return None


def pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _osv(doc: dict[str, Any], source: str) -> dict[str, Any]:
    aliases = [a for a in doc.get("aliases") or [] if isinstance(a, str)]
    cve_ids = [a for a in [doc["id"], *aliases] if _CVE.match(a)]
    cve_id = cve_ids[0] if cve_ids else doc["id"]
    vectors: dict[str, str | None] = {"cvss2": None, "cvss3": None, "cvss4": None}
    for sev in doc.get("severity") or []:
        if isinstance(sev, dict) and (kind := _vector_kind(sev)) and vectors[kind] is None:
            vectors[kind] = str(sev.get("score", ""))
    score = score_of(vectors)
    extra = doc.get("database_specific") or {}
    if isinstance(extra.get("cvss_score"), int | float):
        score = float(extra["cvss_score"])
    affected = []
    for aff in doc.get("affected") or []:
        pkg = aff.get("package") or {}
        eco, name = str(pkg.get("ecosystem", "")).lower(), str(pkg.get("name", ""))
        purl = str(pkg.get("purl", ""))
        if purl.startswith("pkg:pypi/"):
            eco, name = "pypi", purl[len("pkg:pypi/"):].split("@")[0]
        if eco not in ("pypi", "conda") or not name:
            continue
        ranges = [ev for r in aff.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")
                  for ev in r.get("events") or []]
        affected.append({"ecosystem": eco, "name": pypi_name(name) if eco == "pypi" else name,
                         "ranges": ranges, "versions": list(aff.get("versions") or [])})
    return {"id": cve_id, "aliases": sorted({doc["id"], *aliases} - {cve_id}), "score": score,
            "type": "OSV", "description": doc.get("summary") or doc.get("details") or "",
            "published": doc.get("published"), "modified": doc.get("modified"),
            **vectors, "source": source, "affected": affected}


def _curated(entry: dict[str, Any], source: str) -> dict[str, Any]:
    if not isinstance(entry.get("id"), str):
        raise InvalidCveData(f"{source}: every curated entry needs an 'id'")
    status = entry.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidCveData(f"{source}: {entry['id']}: unknown status {status!r}")
    affected = []
    for aff in entry.get("affected") or []:
        affected.append({"ecosystem": "conda", "name": aff["name"],
                         "spec": str(aff.get("versions") or "*")})
    vectors = {k: entry.get(k) for k in ("cvss2", "cvss3", "cvss4")}
    score = entry.get("score")
    if score is None:  # no score given: the vectors' (if any)
        score = score_of({k: v for k, v in vectors.items() if isinstance(v, str)})
    return {"id": entry["id"], "score": score, "status": status,
            "type": entry.get("type") or "curated", "description": entry.get("description", ""),
            "published": entry.get("published"), "modified": entry.get("modified"),
            **vectors, "source": source,
            "aliases": entry.get("aliases") or [], "affected": affected}


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            yield str(file), json.loads(file.read_bytes())
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in sorted(zf.namelist()):
                if name.endswith(".json"):
                    yield f"{path}:{name}", json.loads(zf.read(name))
    else:
        yield str(path), json.loads(path.read_bytes())


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every CVE record under ``path`` (a directory, a zip, or one JSON file)."""
    out: list[dict[str, Any]] = []
    try:
        for source, doc in _documents(path):
            if isinstance(doc, dict) and doc.get("format") == CURATED:
                out += [_curated(e, source) for e in doc.get("cves") or []]
            elif isinstance(doc, dict) and "id" in doc and "affected" in doc:
                record = _osv(doc, source)
                if record["affected"]:  # other ecosystems of the same dump are skipped
                    out.append(record)
            else:
                raise InvalidCveData(f"{source} is neither an OSV record nor {CURATED} data")
    except (ValueError, KeyError, OSError) as e:
        raise InvalidCveData(f"cannot read CVE data from {path}: {e}") from None
    return out
