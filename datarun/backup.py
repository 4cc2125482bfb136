"""Backup and restore of the platform's state: the database and the storage
directory, in one tar file (``manage.py backup`` / ``manage.py restore``).

PostgreSQL is dumped with ``pg_dump --format=custom`` and restored with
``pg_restore --clean``; SQLite (the embedded run) is copied with SQLite's
online backup API. The storage directory (blobs, prepared problems,
artifacts) goes in as it is; ``tmp/`` and cached profiles are left out.
Artifacts in S3 are not in the backup: the bucket has its own.
"""
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from datarun.errors import ApplicationError

FORMAT = 1
SKIPPED_STORAGE = {"tmp", "profiles"}


def backup(*, database: dict, storage: Path, out: Path) -> dict:
    """Write the backup tar ``out``; return its manifest."""
    storage = Path(storage)
    with tempfile.TemporaryDirectory(prefix="datarun-backup-") as scratch:
        dump = Path(scratch) / _dump_name(database)
        _dump_database(database, dump)
        files = [p for p in sorted(storage.rglob("*")) if p.is_file()
                 and p.relative_to(storage).parts[0] not in SKIPPED_STORAGE] \
            if storage.exists() else []
        manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(),
                    "engine": database["ENGINE"].rsplit(".", 1)[-1], "database": dump.name,
                    "storage_files": len(files),
                    "storage_bytes": sum(p.stat().st_size for p in files)}
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.add(dump, arcname=dump.name)
            for path in files:
                tar.add(path, arcname="storage/" + path.relative_to(storage).as_posix())
        os.replace(partial, out)
    return manifest


def restore(*, database: dict, storage: Path, archive: Path) -> dict:
    """Replace the database's content and the storage's files with the backup's."""
    try:
        tar = tarfile.open(archive)
    except (OSError, tarfile.TarError) as exc:
        raise ApplicationError(f"{archive} is not a backup made by manage.py backup "
                               f"({exc})") from exc
    with tar, tempfile.TemporaryDirectory(prefix="datarun-restore-") as scratch:
        try:
            manifest = json.load(tar.extractfile("manifest.json"))
        except (KeyError, ValueError) as exc:
            raise ApplicationError(f"{archive} has no manifest.json: it is not a backup made "
                                   "by manage.py backup") from exc
        if manifest.get("format") != FORMAT:
            raise ApplicationError(f"{archive} is a backup of format {manifest.get('format')}; "
                                   f"this version restores format {FORMAT}")
        engine = database["ENGINE"].rsplit(".", 1)[-1]
        if manifest["engine"] != engine:
            raise ApplicationError(f"the backup is of a {manifest['engine']} database and this "
                                   f"platform uses {engine}: restore it on the same kind")
        # filter="data": no absolute paths, no '..', no links out, no devices.
        tar.extractall(scratch, filter="data")
        _restore_database(database, Path(scratch) / manifest["database"])
        restored = Path(scratch) / "storage"
        storage = Path(storage)
        storage.mkdir(parents=True, exist_ok=True)
        if restored.exists():
            shutil.copytree(restored, storage, dirs_exist_ok=True)
    return manifest


def _dump_name(database: dict) -> str:
    return "database.sqlite3" if _is_sqlite(database) else "database.pgdump"


def _is_sqlite(database: dict) -> bool:
    return database["ENGINE"].endswith("sqlite3")


def _pg_env(database: dict) -> dict:
    env = {**os.environ, "PGHOST": str(database.get("HOST") or ""),
           "PGPORT": str(database.get("PORT") or ""), "PGUSER": database.get("USER") or "",
           "PGDATABASE": database["NAME"]}
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = database["PASSWORD"]
    return {k: v for k, v in env.items() if v != ""}


def _run(command: list[str], database: dict) -> None:
    try:
        result = subprocess.run(command, env=_pg_env(database), capture_output=True, text=True,
                                timeout=3600)
    except FileNotFoundError as exc:
        raise ApplicationError(f"{command[0]} is not installed: install the PostgreSQL client "
                               "of the server's major version (Debian: postgresql-client)") \
            from exc
    if result.returncode != 0:
        raise ApplicationError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")


def _dump_database(database: dict, out: Path) -> None:
    if _is_sqlite(database):
        with sqlite3.connect(database["NAME"]) as source, sqlite3.connect(out) as target:
            source.backup(target)
        return
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(out)], database)


def _restore_database(database: dict, dump: Path) -> None:
    if _is_sqlite(database):
        with sqlite3.connect(dump) as source, sqlite3.connect(database["NAME"]) as target:
            source.backup(target)
        return
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
          "--dbname", database["NAME"], str(dump)], database)
