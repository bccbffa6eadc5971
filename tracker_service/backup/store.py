"""The backup store behind TRACKER_BACKUP_URL, through fsspec: file://, s3:// (any S3-compatible
server, with TRACKER_BACKUP_ENDPOINT_URL) and gs://. s3fs and gcsfs come with the `backup` extra.

Every call is blocking (fsspec's sync API); the syncer runs them in a thread. Failures of any kind
become BackupUnavailable with the store's own reason, for the log and /health.
"""

from __future__ import annotations

from typing import Any

from tracker_service.errors import BackupUnavailable

# Fail fast and let the syncer's backoff retry: botocore's defaults wait minutes on a dead endpoint.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 20, "retries": {"max_attempts": 2, "mode": "standard"}}
SCHEMES = ("file", "s3", "gs")


class BackupStore:
    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        try:
            import fsspec
        except ImportError as exc:
            raise ValueError(
                "TRACKER_BACKUP_URL needs fsspec: pip install 'agent-tracker[backup]' (s3fs, gcsfs)"
            ) from exc
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in SCHEMES:
            raise ValueError(f"TRACKER_BACKUP_URL must start with file://, s3:// or gs://, got {url!r}")
        # No cached listings: restore and readers must see what is there now.
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if scheme == "file":
            options["auto_mkdir"] = True
        elif scheme == "s3":
            options["config_kwargs"] = S3_CONFIG
            if endpoint_url:
                options["endpoint_url"] = endpoint_url
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise ValueError(f"TRACKER_BACKUP_URL {scheme}:// needs pip install 'agent-tracker[backup]'") from exc
        self.url = backup_target(url)
        self.root = root.rstrip("/")

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def put(self, path: str, data: bytes) -> None:
        """Write the whole object (a repeat writes the same bytes again: idempotent)."""
        self._call("write", path, self.fs.pipe_file, self._full(path), data)

    def put_many(self, objects: dict[str, bytes]) -> None:
        """Write many whole objects; fsspec sends them concurrently to S3 and GCS."""
        if objects:
            self._call("write", f"{len(objects)} objects", self.fs.pipe, {self._full(p): d for p, d in objects.items()})

    def delete(self, path: str) -> None:
        """Remove the object; one already gone is fine."""
        try:
            self.fs.rm_file(self._full(path))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise _unavailable("delete", path, exc) from exc

    def get(self, path: str) -> bytes:
        return self._call("read", path, self.fs.cat_file, self._full(path))

    def exists(self, path: str) -> bool:
        return bool(self._call("check", path, self.fs.exists, self._full(path)))

    def find(self, prefix: str) -> list[str]:
        """Every object under prefix, as paths relative to the root, sorted."""
        base = self._full(prefix)
        found = self._call("list", prefix, self.fs.find, base)
        start = len(self.root) + 1
        return sorted(p[start:] for p in found if p.startswith(self.root + "/"))

    def _call(self, what: str, path: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise _unavailable(what, path, exc) from exc


def _unavailable(what: str, path: str, exc: Exception) -> BackupUnavailable:
    return BackupUnavailable(f"backup store: could not {what} {path}: {type(exc).__name__}: {exc}"[:500])


def backup_target(url: str) -> str:
    """The name of a target (its cursor's): the URL without a trailing slash."""
    return url.rstrip("/")
