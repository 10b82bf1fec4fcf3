"""S3 audit throughput vs raw Triton, in one run (issue: "Merchant feedback webhook and S3 batch audits").

    python -m bench.audit_bench [--objects 1000] [--out var/bench/audit.json]

Starts moto's S3 server on loopback and `idetex serve` pointed at it (embedded defaults
otherwise, 2 worker processes), uploads `--objects` distinct JPEGs of about 1 MP (the
four fixture photos at 1,024 px long side, each with its own JPEG comment, so every object
is graded), measures raw Triton throughput and the pipeline's (200 async Validate calls) on
the same photos, then runs one audit of the bucket prefix through the gRPC API and reports
its images/s (objects / (finished - created)).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.photos import base_images, jpeg_variant
from bench.pipeline_bench import pipeline_async, raw_triton
from bench.stack import running_stack
from service.adapters.triton_server import find_free_port
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def run(objects: int, workdir: Path) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.update({k: os.environ.get(k, v) for k, v in AWS_ENV.items()})
    port = find_free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="catalogue")
        images = base_images()
        sizes = [im.size for im in images]
        total_bytes = 0
        for i in range(objects):
            data = jpeg_variant(images[i % len(images)], i)
            total_bytes += len(data)
            s3.put_object(Bucket="catalogue", Key=f"products/{i:05d}.jpg", Body=data)
            if (i + 1) % 200 == 0:
                print(f"  uploaded {i + 1}/{objects}", file=sys.stderr)
        extra = {"IDETEX_S3_ENDPOINT_URL": endpoint, "IDETEX_S3_REGION": "us-east-1", **AWS_ENV}
        with running_stack(workdir, workers=2, extra_env=extra) as stack:
            print("raw Triton ...", file=sys.stderr)
            raw = raw_triton(stack, images, 200)
            print("pipeline (async Validate) ...", file=sys.stderr)
            pipe = pipeline_async(stack, images, 200, "bench")
            print("audit ...", file=sys.stderr)
            with ValidationClient(stack.addr, stack.api_key) as client:
                auth = (("x-api-key", stack.api_key),)
                audit = client.stub.StartAudit(
                    pb.StartAuditRequest(
                        source="s3://catalogue/products/", destination="s3://catalogue/reports"
                    ),
                    metadata=auth,
                    timeout=30,
                )
                while audit.status == "RUNNING":
                    time.sleep(1.0)
                    audit = client.stub.GetAudit(
                        pb.AuditRequest(audit_id=audit.id), metadata=auth, timeout=30
                    )
                    print(
                        f"\r  {audit.finished}/{audit.total} {audit.images_per_s:.1f} img/s",
                        end="",
                        file=sys.stderr,
                    )
                print(file=sys.stderr)
            elapsed = audit.finished_at.ToDatetime() - audit.created_at.ToDatetime()
            audit_rate = audit.total / max(elapsed.total_seconds(), 1e-6)
        return {
            "objects": objects,
            "mean_object_kib": round(total_bytes / objects / 1024, 1),
            "image_sizes": sizes,
            "audit_status": audit.status,
            "per_status": dict(audit.per_status),
            "audit_seconds": round(elapsed.total_seconds(), 1),
            "audit_images_per_s": round(audit_rate, 2),
            "raw_triton_images_per_s": round(raw["throughput"], 2),
            "ratio_audit_vs_raw_triton": round(audit_rate / raw["throughput"], 3),
            "pipeline_async_images_per_s": round(pipe["throughput"], 2),
            "ratio_audit_vs_pipeline": round(audit_rate / pipe["throughput"], 3),
            "report_uri": audit.report_uri,
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("var/bench/audit.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.objects, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["audit_status"] == "DONE" else 1


if __name__ == "__main__":
    raise SystemExit(main())
