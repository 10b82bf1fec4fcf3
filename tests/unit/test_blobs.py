"""Blob store adapters: local files and S3 keep the same contract."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from service.adapters.blobs import LocalBlobStore, RoutingBlobStore, S3BlobStore, blob_store_from_url
from service.domain.errors import ImageTooLarge, InvalidRequest, NotFound


@pytest.fixture()
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="shop")
        yield client


def test_local_store_round_trips_bytes(tmp_path):
    """put returns a file:// URI that get reads back."""
    store = LocalBlobStore(tmp_path)
    uri = store.put("originals/m1/abc", b"\xff\xd8data", "image/jpeg")
    assert uri.startswith("file://")
    assert store.get(uri) == b"\xff\xd8data"


def test_local_store_reports_missing_and_foreign_files_as_not_found(tmp_path):
    """A missing file, or one outside the root, is NotFound."""
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(NotFound):
        store.get((tmp_path / "blobs" / "nope").as_uri())
    (tmp_path / "secret").write_bytes(b"x")
    with pytest.raises(NotFound):
        store.get((tmp_path / "secret").as_uri())


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "."])
def test_local_store_refuses_unsafe_keys(tmp_path, key):
    """Keys cannot escape the root or be empty."""
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path).put(key, b"x", "image/png")


def test_get_refuses_objects_above_the_size_limit(tmp_path):
    """max_bytes turns an oversized blob into ImageTooLarge before it is read."""
    store = LocalBlobStore(tmp_path)
    uri = store.put("k", b"x" * 100, "image/png")
    with pytest.raises(ImageTooLarge):
        store.get(uri, max_bytes=99)


def test_s3_store_round_trips_under_its_prefix(s3):
    """put writes s3://bucket/prefix/key and get reads it back."""
    store = S3BlobStore("shop", "blobs/", client=s3)
    uri = store.put("originals/m1/abc", b"pixels", "image/png")
    assert uri == "s3://shop/blobs/originals/m1/abc"
    assert store.get(uri) == b"pixels"
    assert s3.head_object(Bucket="shop", Key="blobs/originals/m1/abc")["ContentType"] == "image/png"


def test_s3_missing_object_or_bucket_is_not_found(s3):
    """A missing key or bucket is the domain's NotFound, never a botocore error."""
    store = S3BlobStore("shop", client=s3)
    with pytest.raises(NotFound, match=r"s3://shop/missing\.jpg"):
        store.get("s3://shop/missing.jpg")
    with pytest.raises(NotFound):
        store.get("s3://no-such-bucket/a.jpg")


def test_s3_uri_without_a_key_is_an_invalid_request(s3):
    """s3://bucket alone is not an object."""
    with pytest.raises(InvalidRequest) as err:
        S3BlobStore("shop", client=s3).get("s3://shop")
    assert err.value.reason == "BAD_S3_URI"


def test_s3_object_above_the_limit_is_too_large(s3):
    """The size check uses the object's length."""
    s3.put_object(Bucket="shop", Key="big.jpg", Body=b"x" * 50)
    with pytest.raises(ImageTooLarge):
        S3BlobStore("shop", client=s3).get("s3://shop/big.jpg", max_bytes=10)


def test_routing_store_writes_locally_and_reads_s3_inputs(tmp_path, s3):
    """With file:// blobs, s3:// inputs are still readable; unknown schemes are refused."""
    s3.put_object(Bucket="shop", Key="in/a.jpg", Body=b"from-s3")
    local = LocalBlobStore(tmp_path)
    store = RoutingBlobStore(local, {"file": local, "s3": S3BlobStore("", client=s3)})
    uri = store.put("k", b"local", "image/jpeg")
    assert store.get(uri) == b"local"
    assert store.get("s3://shop/in/a.jpg") == b"from-s3"
    with pytest.raises(InvalidRequest):
        store.get("http://example.com/a.jpg")


def test_blob_store_from_url_builds_without_contacting_s3(tmp_path):
    """Construction from a URL makes no client (nothing to reach), for file:// and s3://."""
    local = blob_store_from_url(f"file://{tmp_path}/blobs")
    assert local.get(local.put("a/b", b"1", "image/png")) == b"1"
    remote = blob_store_from_url("s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:1")
    assert isinstance(remote.primary, S3BlobStore)
    assert remote.primary._client is None
    with pytest.raises(ValueError):
        blob_store_from_url("ftp://x")
