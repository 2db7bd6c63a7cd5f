"""CycloneDX 1.6 JSON SBOMs of conda package files (conda-protocol.md section 9)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from repoproxy.models import PackageRecord


def conda_purl(rec: PackageRecord, channel_url: str) -> Any:
    from packageurl import PackageURL

    kind = "conda" if rec.filename.endswith(".conda") else "tar.bz2"
    return PackageURL(type="conda", name=rec.name, version=rec.version, qualifiers={
        "build": rec.build, "channel": channel_url, "subdir": rec.subdir, "type": kind})


def read_paths(path: Path, filename: str) -> list[dict[str, Any]]:
    """The entries of info/paths.json (reads the info part only)."""
    from repoproxy.pipeline.archive import read_info

    raw = read_info(path, filename)[0].get("info/paths.json")
    if not raw:
        return []
    doc = json.loads(raw)
    return [p for p in doc.get("paths") or [] if isinstance(p, dict) and p.get("_path")]


def _license(text: Any) -> Any:
    """A conda ``license`` as CycloneDX wants it, decided by cyclonedx-python-lib's factory:
    a known SPDX id in its SPDX spelling (``mit`` -> ``MIT``), a valid SPDX expression as an
    expression, anything else as a named license."""
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib before the contrib package
        from cyclonedx.factory.license import LicenseFactory

    return LicenseFactory().make_from_string(str(text).strip())


def build_sbom(rec: PackageRecord, package_path: Path, channel_url: str,
               download_url: str) -> str:
    """The SBOM of one stored package file, as CycloneDX 1.6 JSON text."""
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.component_evidence import ComponentEvidence, Identity, IdentityField
    from packageurl import PackageURL

    import repoproxy

    about, index = rec.about, rec.record
    refs = []
    for key, kind in (("home", ExternalReferenceType.WEBSITE),
                      ("dev_url", ExternalReferenceType.VCS),
                      ("doc_url", ExternalReferenceType.DOCUMENTATION),
                      ("source_url", ExternalReferenceType.SOURCE_DISTRIBUTION)):
        value = about.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value:
            refs.append(ExternalReference(type=kind, url=XsUri(value), comment=key))
    refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                  url=XsUri(download_url), comment="download",
                                  hashes=[HashType(alg=HashAlgorithm.SHA_256,
                                                   content=rec.sha256)]))
    license_text = index.get("license") or about.get("license")
    extra_purls = [p for p in index.get("purls") or [] if isinstance(p, str)]
    evidence = None
    if extra_purls:
        evidence = ComponentEvidence(identity=[
            Identity(field=IdentityField.PURL, concluded_value=p) for p in extra_purls])
    purl = conda_purl(rec, channel_url)
    artifact = Component(
        type=ComponentType.LIBRARY, name=rec.name, version=rec.version,
        bom_ref=purl.to_string(), purl=purl, description=about.get("summary") or None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=rec.sha256),
                HashType(alg=HashAlgorithm.MD5, content=rec.md5)],
        licenses=[_license(license_text)] if license_text else None,
        external_references=refs,
        properties=[Property(name="conda:build", value=rec.build),
                    Property(name="conda:build_number", value=str(rec.build_number)),
                    Property(name="conda:subdir", value=rec.subdir),
                    Property(name="conda:filename", value=rec.filename),
                    Property(name="conda:indexed_timestamp", value=str(rec.indexed_timestamp)),
                    *[Property(name="conda:purl", value=p) for p in extra_purls]],
        evidence=evidence,
    )
    bom = Bom()
    bom.metadata.component = artifact
    bom.metadata.tools.components.add(Component(
        type=ComponentType.APPLICATION, name="repoproxy", version=repoproxy.__version__))
    files = []
    for entry in read_paths(package_path, rec.filename):
        hashes = []
        if entry.get("sha256"):
            hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=entry["sha256"]))
        props = [Property(name="conda:path_type", value=str(entry.get("path_type", "")))]
        if entry.get("size_in_bytes") is not None:
            props.append(Property(name="conda:size_in_bytes",
                                  value=str(entry["size_in_bytes"])))
        files.append(Component(type=ComponentType.FILE, name=entry["_path"],
                               bom_ref=f"file:{entry['_path']}", hashes=hashes,
                               properties=props))
    deps = []
    for i, spec in enumerate(index.get("depends") or []):
        name, _, constraint = spec.partition(" ")
        deps.append(Component(
            type=ComponentType.LIBRARY, name=name, bom_ref=f"dep:{i}:{spec}",
            purl=PackageURL(type="conda", name=name),
            description=f"conda dependency {spec}",
            properties=[Property(name="conda:depends", value=spec),
                        *([Property(name="conda:constraint", value=constraint.strip())]
                          if constraint.strip() else [])]))
    for c in (*files, *deps):
        bom.components.add(c)
    bom.register_dependency(artifact, deps)
    return _output(bom)


def build_subdir_sbom(channel: str, subdir: str, parts: list[tuple[PackageRecord, str]]
                      ) -> str:
    """One SBOM for a whole channel subdir: each file is a component with its purl."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    import repoproxy

    bom = Bom()
    bom.metadata.component = Component(type=ComponentType.APPLICATION,
                                       name=f"{channel}/{subdir}", bom_ref=f"{channel}/{subdir}")
    bom.metadata.tools.components.add(Component(
        type=ComponentType.APPLICATION, name="repoproxy", version=repoproxy.__version__))
    members = []
    for rec, channel_url in parts:
        purl = conda_purl(rec, channel_url)
        lic = rec.record.get("license")
        comp = Component(
            type=ComponentType.LIBRARY, name=rec.name, version=rec.version,
            bom_ref=purl.to_string(), purl=purl,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=rec.sha256),
                    HashType(alg=HashAlgorithm.MD5, content=rec.md5)],
            licenses=[_license(lic)] if lic else None,
            properties=[Property(name="conda:filename", value=rec.filename)])
        bom.components.add(comp)
        members.append(comp)
    bom.register_dependency(bom.metadata.component, members)
    return _output(bom)


def _output(bom: Any) -> str:
    from cyclonedx.output.json import JsonV1Dot6

    with warnings.catch_warnings():
        # a package without dependencies has a complete, empty graph; the library warns anyway
        warnings.filterwarnings("ignore", message=".*has no defined dependencies.*")
        return str(JsonV1Dot6(bom).output_as_string(indent=2))


def validate(text: str) -> None:
    """Raise ValueError if ``text`` is not valid CycloneDX 1.6 JSON."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise ValueError(f"invalid CycloneDX 1.6: {error}")
