"""What an audit reads from and writes to S3: listings, manifests, objects, the report.

Three sources, each read one page at a time from a resumable cursor (a JSON string):

- a bucket prefix: ListObjectsV2, 1,000 keys a page, cursor = the continuation token;
- an S3 Batch Operations CSV manifest: rows `bucket,key[,versionId]` with URL-encoded
  keys, cursor = the next row;
- an S3 Inventory `manifest.json`: its CSV data files (gzip or plain) with the columns
  its `fileSchema` names, cursor = (file, row).

Errors reading one object come back as a stable code (NOT_FOUND, ACCESS_DENIED, ...), so
the audit records them per object instead of failing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from service.adapters.blobs import is_bucket_name, parse_s3_uri, split_uri
from service.domain.errors import InvalidRequest

PAGE = 1000


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    version_id: str = ""
    etag: str = ""
    size: int = 0


class ObjectUnavailable(Exception):
    """One object cannot be read; `code` is NOT_FOUND, ACCESS_DENIED or S3_ERROR."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ListingError(Exception):
    """The source itself cannot be read (no bucket, no manifest, a malformed manifest)."""


def split_prefix(uri: str) -> tuple[str, str]:
    """s3://bucket[/prefix] -> (bucket, prefix); InvalidRequest for anything else."""
    parts = split_uri(uri, "source")
    if parts.scheme != "s3" or not is_bucket_name(parts.netloc):
        raise InvalidRequest("source", "BAD_S3_URI", f"expected s3://bucket[/prefix], got {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


def source_kind(uri: str) -> str:
    """prefix | csv | inventory, from the source URI's shape."""
    _, key = split_prefix(uri)
    if key.endswith("manifest.json"):
        return "inventory"
    if key.lower().endswith(".csv"):
        return "csv"
    return "prefix"


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound"):
        return "NOT_FOUND"
    if code in ("AccessDenied", "403", "AllAccessDisabled", "Forbidden"):
        return "ACCESS_DENIED"
    return "S3_ERROR"


class S3Catalogue:
    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._factory()
        return self._client

    # ------------------------------------------------------------ listing

    def page(self, kind: str, source_uri: str, cursor: str | None) -> tuple[list[S3Object], str | None]:
        """One page of the source from `cursor` (None: the start); the next cursor, None at the end."""
        try:
            if kind == "prefix":
                return self._prefix_page(source_uri, cursor)
            if kind == "csv":
                return self._csv_page(source_uri, cursor)
            if kind == "inventory":
                return self._inventory_page(source_uri, cursor)
        except ListingError:
            raise
        except Exception as exc:
            raise ListingError(f"cannot read {source_uri}: {_error_code(exc)}: {exc}") from exc
        raise ListingError(f"unknown source kind {kind!r}")

    def _prefix_page(self, uri: str, cursor: str | None) -> tuple[list[S3Object], str | None]:
        bucket, prefix = split_prefix(uri)
        args: dict[str, Any] = {"Bucket": bucket, "MaxKeys": PAGE}
        if prefix:
            args["Prefix"] = prefix
        if cursor:
            args["ContinuationToken"] = cursor
        resp = self.client.list_objects_v2(**args)
        objects = [
            S3Object(bucket, o["Key"], "", str(o.get("ETag", "")).strip('"'), int(o.get("Size", 0)))
            for o in resp.get("Contents", [])
            if not o["Key"].endswith("/")
        ]
        return objects, resp.get("NextContinuationToken") if resp.get("IsTruncated") else None

    def _read(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        obj = self.client.get_object(Bucket=bucket, Key=key)
        data: bytes = obj["Body"].read()
        return gzip.decompress(data) if key.endswith(".gz") else data

    def _csv_page(self, uri: str, cursor: str | None) -> tuple[list[S3Object], str | None]:
        rows = list(csv.reader(io.StringIO(self._read(uri).decode("utf-8-sig"))))
        start = int(cursor or 0)
        objects = []
        for i, row in enumerate(rows[start : start + PAGE], start=start + 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise ListingError(f"{uri} row {i}: expected bucket,key[,versionId], got {row!r}")
            version = row[2].strip() if len(row) > 2 else ""
            objects.append(S3Object(row[0].strip(), unquote_plus(row[1]), version))
        end = start + PAGE
        return objects, str(end) if end < len(rows) else None

    def _inventory_page(self, uri: str, cursor: str | None) -> tuple[list[S3Object], str | None]:
        try:
            manifest = json.loads(self._read(uri))
            files = [f["key"] for f in manifest["files"]]
            schema = [c.strip() for c in manifest["fileSchema"].split(",")]
            bucket_col, key_col = schema.index("Bucket"), schema.index("Key")
        except (ValueError, KeyError, TypeError) as exc:
            raise ListingError(f"{uri} is not an S3 Inventory manifest.json: {exc}") from exc
        if str(manifest.get("fileFormat", "CSV")).upper() != "CSV":
            raise ListingError(f"{uri}: only CSV inventories are read, not {manifest.get('fileFormat')}")
        version_col = schema.index("VersionId") if "VersionId" in schema else None
        etag_col = schema.index("ETag") if "ETag" in schema else None
        size_col = schema.index("Size") if "Size" in schema else None
        file_index, row_index = (int(v) for v in (cursor or "0:0").split(":"))
        if file_index >= len(files):
            return [], None
        inventory_bucket, _ = parse_s3_uri(uri)
        destination = str(manifest.get("destinationBucket", ""))
        data_bucket = destination.removeprefix("arn:aws:s3:::") or inventory_bucket
        rows = list(csv.reader(io.StringIO(self._read(f"s3://{data_bucket}/{files[file_index]}").decode())))

        def col(row: list[str], index: int | None) -> str:
            return row[index] if index is not None and index < len(row) else ""

        objects = []
        for row in rows[row_index : row_index + PAGE]:
            if len(row) <= max(bucket_col, key_col):
                continue
            size = col(row, size_col)
            objects.append(
                S3Object(
                    row[bucket_col],
                    unquote_plus(row[key_col]),
                    col(row, version_col),
                    col(row, etag_col),
                    int(size) if size.isdigit() else 0,
                )
            )
        if row_index + PAGE < len(rows):
            return objects, f"{file_index}:{row_index + PAGE}"
        return objects, f"{file_index + 1}:0" if file_index + 1 < len(files) else None

    # ------------------------------------------------------------ objects

    def get(self, obj: S3Object, max_bytes: int) -> bytes:
        args: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id and obj.version_id != "null":
            args["VersionId"] = obj.version_id
        try:
            resp = self.client.get_object(**args)
        except Exception as exc:
            raise ObjectUnavailable(_error_code(exc), f"s3://{obj.bucket}/{obj.key}: {exc}") from exc
        body = resp["Body"]
        try:
            if int(resp.get("ContentLength", 0)) > max_bytes:
                raise ObjectUnavailable("TOO_LARGE", f"s3://{obj.bucket}/{obj.key} is over {max_bytes} bytes")
            return bytes(body.read())
        finally:
            body.close()

    def put(self, uri: str, data: bytes, content_type: str) -> str:
        bucket, key = parse_s3_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return uri
