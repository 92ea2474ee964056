"""The data manifest (which files the paper scale needs) and the trust-on-first-use lock file.

The manifest is a YAML file (default: ``amad/data/manifests/paper.yaml``); its header comment documents the format.
The lock file (``<data_root>/manifest.lock.json``, or a path the caller chooses) records the sha256 of every
verified file, so files without a checksum in the manifest are trusted on first use and verified afterwards, and
unchanged files are not re-hashed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from amad import atomic
from amad.errors import ConfigError, DataError
from amad.registry import unknown_name

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = Path(__file__).resolve().parent / "manifests" / "paper.yaml"
LOCK_NAME = "manifest.lock.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = {
    "path",
    "url",
    "source",
    "size",
    "sha256",
    "unpack",
    "produces",
    "drive",
    "fallback",
    "into",
    "members",
    "count",
    "tls_verify",
    "remove_archive",
}
# zip / gz: extract the files in ``produces``; zip_flat: extract every member matching ``members`` flat into the
# folder ``into`` (``count`` of them); lxmert_tsv: convert LXMERT's obj36 tsv (or a zip holding it) to produces[0].
_UNPACK = {"zip", "gz", "zip_flat", "lxmert_tsv"}


@dataclass(frozen=True)
class ManifestEntry:
    """One file: its relative path (under the data root and under a mirror), where to get it, how to check it.

    url is None when the file has no direct download (``source`` then says where it lives; ``drive_folder`` and
    ``drive_path`` locate it in a public Google Drive folder); size (bytes) and sha256 are None when unknown;
    unpack ("zip" | "gz" | "lxmert_tsv") makes ``produces`` (relative paths) from the file, "zip_flat" extracts the
    ``count`` members matching ``members`` flat into the folder ``into``; ``fallback`` names another entry whose
    unpacking also produces this file (tried when this one cannot be fetched); ``remove_archive`` deletes the
    file once unpacked; ``tls_verify`` false accepts a host's invalid certificate (as its own instructions do).
    """

    path: str
    url: str | None
    size: int | None
    sha256: str | None
    group: str
    source: str | None = None
    unpack: str | None = None
    produces: tuple[str, ...] = ()
    drive_folder: str | None = None
    drive_path: str | None = None
    fallback: str | None = None
    into: str | None = None
    members: str | None = None
    count: int | None = None
    tls_verify: bool = True
    remove_archive: bool = False

    def where(self) -> str:
        """Human-readable origin: the URL, else the Drive folder path, else the source note."""
        if self.url:
            return self.url
        if self.drive_folder:
            return f"file {self.drive_path} in Google Drive folder https://drive.google.com/drive/folders/{self.drive_folder}"
        return self.source or "no known source"

    @property
    def marker(self) -> str | None:
        """For zip_flat entries: the file written into ``into`` once every member is extracted."""
        return f"{self.into}/.{PurePosixPath(self.path).name}.unpacked" if self.unpack == "zip_flat" else None


@dataclass
class Manifest:
    """Entries grouped by name and the groups each task needs."""

    groups: dict[str, list[ManifestEntry]]
    tasks: dict[str, list[str]]
    path: Path | None = None

    def group(self, name: str) -> list[ManifestEntry]:
        """Entries of one group; unknown names raise UnknownNameError with near matches."""
        if name not in self.groups:
            raise unknown_name("manifest group", name, self.groups)
        return self.groups[name]

    def for_task(self, task: str) -> list[ManifestEntry]:
        """All entries a task needs (its groups in order)."""
        if task not in self.tasks:
            raise unknown_name("manifest task", task, self.tasks)
        return [entry for name in self.tasks[task] for entry in self.group(name)]

    def entries(self) -> list[ManifestEntry]:
        return [entry for entries in self.groups.values() for entry in entries]

    def fallbacks(self, entries: list[ManifestEntry]) -> dict[str, ManifestEntry]:
        """entry path -> the entry it falls back to, for those of ``entries`` that name one."""
        return {e.path: self.entry(e.fallback) for e in entries if e.fallback}

    def entry(self, path: str) -> ManifestEntry:
        """The entry with this relative path."""
        for entry in self.entries():
            if entry.path == path:
                return entry
        raise DataError(f"{path!r} is not in the manifest {self.path}: use one of the listed relative paths")


def _check_rel(path: object, where: str) -> str:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{where}: 'path' must be a non-empty relative path string")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise ConfigError(f"{where}: path {path!r} must be relative, use '/' and stay inside the data root")
    return str(pure)


def _parse_entry(raw: object, group: str, where: str) -> ManifestEntry:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each file must be a mapping with keys {sorted(_ENTRY_KEYS)}")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed keys are {sorted(_ENTRY_KEYS)}")
    path = _check_rel(raw.get("path"), where)
    where = f"{where} ({path})"
    size, sha, unpack = raw.get("size"), raw.get("sha256"), raw.get("unpack")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ConfigError(f"{where}: size must be a byte count or null, got {size!r}")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise ConfigError(f"{where}: sha256 must be 64 lower-case hex digits or null, got {sha!r}")
    if unpack is not None and unpack not in _UNPACK:
        raise ConfigError(f"{where}: unpack must be one of {sorted(_UNPACK)} or absent, got {unpack!r}")
    produces = tuple(_check_rel(p, where) for p in raw.get("produces") or ())
    into = _check_rel(raw["into"], where) if raw.get("into") is not None else None
    count, members = raw.get("count"), raw.get("members")
    if unpack == "zip_flat":
        if into is None or not isinstance(members, str) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"{where}: unpack zip_flat needs 'into' (a folder), 'members' (a glob) and 'count'")
    elif unpack and not produces:
        raise ConfigError(f"{where}: an entry with 'unpack' must list the files it 'produces'")
    drive = raw.get("drive")
    if drive is not None and (not isinstance(drive, dict) or set(drive) != {"folder", "path"}):
        raise ConfigError(f"{where}: 'drive' must be {{folder: <Drive folder id>, path: <path inside it>}}")
    url = raw.get("url")
    if url is None and not raw.get("source") and drive is None:
        raise ConfigError(f"{where}: give a 'url', a 'drive' folder path or, for files without a download, a 'source'")
    for key in ("tls_verify", "remove_archive"):
        if not isinstance(raw.get(key, False), bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    return ManifestEntry(
        path,
        url,
        size,
        sha,
        group,
        raw.get("source"),
        unpack,
        produces,
        drive_folder=str(drive["folder"]) if drive else None,
        drive_path=str(drive["path"]) if drive else None,
        fallback=_check_rel(raw["fallback"], where) if raw.get("fallback") else None,
        into=into,
        members=members,
        count=count,
        tls_verify=raw.get("tls_verify", True),
        remove_archive=raw.get("remove_archive", False),
    )


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate a manifest YAML (default: the packaged paper-scale manifest)."""
    path = Path(path) if path is not None else DEFAULT_MANIFEST
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"manifest {path} does not exist: pass the path of a manifest YAML") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise DataError(f"manifest {path} is not valid YAML (line {line}): fix the file") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("groups"), dict):
        raise ConfigError(f"manifest {path}: expected a mapping with 'groups' (name -> {{files: [...]}})")
    groups: dict[str, list[ManifestEntry]] = {}
    seen: set[str] = set()
    for name, body in raw["groups"].items():
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list):
            raise ConfigError(f"manifest {path}: group {name!r} needs a 'files' list")
        groups[name] = [_parse_entry(item, name, f"manifest {path} group {name!r}") for item in files]
        for entry in groups[name]:
            if entry.path in seen:
                raise ConfigError(f"manifest {path}: {entry.path!r} is listed twice; keep one entry")
            seen.add(entry.path)
    for entry in (e for entries in groups.values() for e in entries):
        if entry.fallback is not None and entry.fallback not in seen:
            raise ConfigError(f"manifest {path}: {entry.path!r} falls back to {entry.fallback!r}, which is not listed")
    tasks = raw.get("tasks") or {}
    for task, names in tasks.items():
        missing = [n for n in names if n not in groups]
        if missing:
            raise ConfigError(f"manifest {path}: task {task!r} names unknown groups {missing}; define them")
    return Manifest(groups=groups, tasks={k: list(v) for k, v in tasks.items()}, path=path)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ManifestLock:
    """The lock file (default ``<data_root>/manifest.lock.json``): relative path -> {sha256, size, mtime_ns,
    trusted_on_first_use}. The pipeline keeps it beside data/raw (``path``), so recording a hash never changes the
    raw-data folder that later stages depend on."""

    def __init__(self, data_root: str | Path, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else Path(data_root) / LOCK_NAME
        self.files: dict[str, dict] = {}
        if self.path.exists():
            try:
                self.files = json.loads(self.path.read_text(encoding="utf-8"))["files"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"lock file {self.path} is corrupt: delete it (files are re-hashed)") from None

    def expected_sha256(self, entry: ManifestEntry) -> str | None:
        """The manifest checksum, else the one recorded on first use, else None."""
        if entry.sha256:
            return entry.sha256
        record = self.files.get(entry.path)
        return record["sha256"] if record else None

    def is_verified(self, entry: ManifestEntry, path: Path) -> bool:
        """True when ``path`` was verified before and has not changed since (same size and mtime)."""
        record = self.files.get(entry.path)
        if not record or record["sha256"] != self.expected_sha256(entry):
            return False
        stat = path.stat()
        return record["size"] == stat.st_size and record["mtime_ns"] == stat.st_mtime_ns

    def record(self, entry: ManifestEntry, path: Path, sha256: str) -> None:
        """Record a verified file and save the lock atomically; warn when the hash is trusted on first use."""
        first_use = entry.sha256 is None and entry.path not in self.files
        if first_use:
            log.warning(
                "%s has no sha256 in the manifest; trusting it on first use and recording %s in %s",
                entry.path,
                sha256,
                self.path,
            )
        stat = path.stat()
        self.files[entry.path] = {
            "sha256": sha256,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "trusted_on_first_use": entry.sha256 is None,
        }
        atomic.write_json(self.path, {"files": self.files})
