"""Read CVE data from files (no network): OSV JSON records and the curated format.

OSV: one JSON record per file, in a directory or a zip (as OSV publishes per ecosystem, e.g.
``PyPI/all.zip``). Curated (docs/policies.md): a JSON file
``{"format": "repoproxy-cve-v1", "cves": [{"id", "score", "status", "description",
"published", "affected": [{"name": <conda name>, "versions": <conda version spec>}]}]}``.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .store import STATUSES, InvalidCveData

CURATED = "repoproxy-cve-v1"
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

# CVSS v3.x base metrics (FIRST's specification, section 7)
_W = {"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}, "AC": {"L": 0.77, "H": 0.44},
      "UI": {"N": 0.85, "R": 0.62}, "CIA": {"H": 0.56, "L": 0.22, "N": 0.0}}


def _roundup(value: float) -> float:
    as_int = round(value * 100000)
    if as_int % 10000 == 0:
        return as_int / 100000.0
    return (math.floor(as_int / 10000) + 1) / 10.0


def cvss3_score(vector: str) -> float | None:
    """The base score of a CVSS v3.x vector; None if it is not one."""
    parts = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    try:
        changed = parts["S"] == "C"
        pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}[parts["PR"]]
        iss = 1 - math.prod(1 - _W["CIA"][parts[m]] for m in ("C", "I", "A"))
        impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
        expl = 8.22 * _W["AV"][parts["AV"]] * _W["AC"][parts["AC"]] * pr * _W["UI"][parts["UI"]]
    except KeyError:
        return None
    if impact <= 0:
        return 0.0
    return _roundup(min((1.08 if changed else 1) * (impact + expl), 10))


def pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _osv(doc: dict[str, Any], source: str) -> dict[str, Any]:
    aliases = [a for a in doc.get("aliases") or [] if isinstance(a, str)]
    cve_ids = [a for a in [doc["id"], *aliases] if _CVE.match(a)]
    cve_id = cve_ids[0] if cve_ids else doc["id"]
    score, cvss2, cvss3 = None, None, None
    for sev in doc.get("severity") or []:
        text = str(sev.get("score", ""))
        if sev.get("type", "").startswith("CVSS_V3") or text.startswith("CVSS:3"):
            cvss3 = text
            score = cvss3_score(text) if score is None else score
        elif sev.get("type") == "CVSS_V2":
            cvss2 = text
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
            "cvss2": cvss2, "cvss3": cvss3, "source": source, "affected": affected}


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
    return {"id": entry["id"], "score": entry.get("score"), "status": status,
            "type": entry.get("type") or "curated", "description": entry.get("description", ""),
            "published": entry.get("published"), "modified": entry.get("modified"),
            "cvss2": entry.get("cvss2"), "cvss3": entry.get("cvss3"), "source": source,
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
