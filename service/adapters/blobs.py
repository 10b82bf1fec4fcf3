"""Blob store port for originals and annotated images: local files or S3 (boto3).

Contract: `put(key, data, content_type) -> uri`; `get(uri, max_bytes=None) -> bytes`
raising the domain's NotFound for a missing object and ImageTooLarge above max_bytes.
Vendor errors (botocore) are translated here and go no further.
"""

from __future__ import annotations

import abc
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from service.domain.errors import ImageTooLarge, InvalidRequest, NotFound


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key` and return its URI."""

    @abc.abstractmethod
    def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        """Return the bytes at `uri`; NotFound when absent, ImageTooLarge above `max_bytes`."""


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key: {key!r}")
    return key


def _too_large(uri: str, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise ImageTooLarge(
            f"{uri} is {size} bytes, above the {max_bytes} byte limit", limit=max_bytes, actual=size
        )


class LocalBlobStore(BlobStore):
    """Files under a root directory; URIs are absolute file:// URIs inside that root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self.root / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: readers never see a half-written blob
        return path.as_uri()

    def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise InvalidRequest("uri", "UNSUPPORTED_SCHEME", f"not a file:// URI: {uri}")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.root):
            raise NotFound(f"{uri} is outside the blob store")
        try:
            _too_large(uri, path.stat().st_size, max_bytes)
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no blob at {uri}") from exc


# botocore's own rule for bucket names: no user, password or port can ride in the bucket's place
_BUCKET = re.compile(r"^[a-zA-Z0-9._-]{1,255}$")


def is_bucket_name(name: str) -> bool:
    return bool(_BUCKET.match(name))


def split_uri(uri: str, field: str = "s3_uri") -> SplitResult:
    """urlsplit, with its ValueError (an unclosed `[`, a bad IPv6 host) as InvalidRequest."""
    try:
        return urlsplit(uri)
    except ValueError as exc:
        raise InvalidRequest(field, "BAD_URI", f"{uri!r} is not a URI: {exc}") from exc


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split s3://bucket/key into (bucket, key); InvalidRequest when either is missing or the
    bucket is not a bucket name."""
    parts = split_uri(uri)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not is_bucket_name(parts.netloc) or not key:
        raise InvalidRequest("s3_uri", "BAD_S3_URI", f"expected s3://bucket/key, got {uri!r}")
    return parts.netloc, key


class S3BlobStore(BlobStore):
    """Objects in an S3 bucket under a prefix; reads any s3:// URI the credentials allow.

    The boto3 client is made on first use (never at import or construction), so a
    forked worker process builds its own.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._client_factory = client_factory

    @property
    def client(self) -> Any:
        if self._client is None:
            if self._client_factory is None:
                raise RuntimeError("S3BlobStore needs a client or a client_factory")
            self._client = self._client_factory()
        return self._client

    def put(self, key: str, data: bytes, content_type: str) -> str:
        if not self.bucket:
            raise RuntimeError("this S3 store has no bucket to write to")
        full = f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)
        self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type)
        return f"s3://{self.bucket}/{full}"

    def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        from botocore.exceptions import ClientError

        bucket, key = parse_s3_uri(uri)
        try:
            obj = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                raise NotFound(f"no S3 object at {uri}") from exc
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                raise NotFound(f"no readable S3 object at {uri} (access denied)") from exc
            raise
        body = obj["Body"]
        try:
            _too_large(uri, int(obj.get("ContentLength", 0)), max_bytes)
            return bytes(body.read())
        finally:
            body.close()


class RoutingBlobStore(BlobStore):
    """Writes to one store; reads any URI by its scheme (file://, s3://)."""

    def __init__(self, primary: BlobStore, readers: Mapping[str, BlobStore]) -> None:
        self.primary = primary
        self.readers = dict(readers)

    def put(self, key: str, data: bytes, content_type: str) -> str:
        return self.primary.put(key, data, content_type)

    def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        scheme = split_uri(uri).scheme  # the only URIs from outside are s3_uri inputs
        reader = self.readers.get(scheme)
        if reader is None:
            raise InvalidRequest("uri", "UNSUPPORTED_SCHEME", f"cannot read {scheme or 'a bare path'}: {uri}")
        return reader.get(uri, max_bytes)


def s3_client_factory(endpoint_url: str = "", region: str = "") -> Callable[[], Any]:
    """A function that makes a boto3 S3 client (credentials from the usual AWS variables)."""

    def make() -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)

    return make


def blob_store_from_url(blob_url: str, s3_endpoint_url: str = "", s3_region: str = "") -> RoutingBlobStore:
    """file://DIR (relative or absolute) or s3://BUCKET/PREFIX for writes; reads file:// and s3://."""
    factory = s3_client_factory(s3_endpoint_url, s3_region)
    parts = urlsplit(blob_url)
    if parts.scheme == "file":
        local = LocalBlobStore(unquote(parts.netloc + parts.path))
        return RoutingBlobStore(local, {"file": local, "s3": S3BlobStore("", client_factory=factory)})
    if parts.scheme == "s3":
        s3 = S3BlobStore(parts.netloc, parts.path, client_factory=factory)
        return RoutingBlobStore(s3, {"s3": s3})
    raise ValueError(f"IDETEX_BLOB_URL must be file://DIR or s3://BUCKET/PREFIX, got {blob_url!r}")
