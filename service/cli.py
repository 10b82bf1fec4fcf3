"""`idetex`: serve the stack, check images against it, manage merchants, predict and evaluate.

Thin: each command parses its arguments and calls one function elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.settings import Settings

PROFILE_HELP = "default, amazon_main, amazon_additional, ebay, google_merchant, generic"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    from service.observability.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    from service.domain.errors import DomainError

    try:
        status: int = args.func(args, settings)
    except DomainError as err:  # a bad id, URL or choice: one line, not a traceback
        print(f"error: {err.code}: {err.message}", file=sys.stderr)
        return 2
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idetex", description="iDetex upload validation service")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="start Triton, a Celery worker and the gRPC API (what `make run` runs)")
    p.add_argument(
        "--workers", type=int, default=None, help="Celery worker processes (IDETEX_WORKER_CONCURRENCY)"
    )
    p.add_argument("--pool", choices=("prefork", "solo"), default="prefork")
    p.add_argument(
        "--triton-ports",
        default="8000,8001,8002",
        help="HTTP,GRPC,METRICS ports of the embedded Triton (0: a free port)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("api", help="only the gRPC API (scale-out: Triton and workers run elsewhere)")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("check", help="validate images against a running server and print the reports")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--profile", default="default", help=PROFILE_HELP)
    p.add_argument("--json", action="store_true", help="print the responses as JSON")
    p.add_argument("--addr", help="server address (default IDETEX_GRPC_ADDR)")
    p.add_argument("--api-key", help="API key (default IDETEX_API_KEY, else var/dev-api-key)")
    p.add_argument("--async", dest="async_", action="store_true", help="queue and print job ids")
    p.add_argument("--timeout", type=float, default=30.0, help="deadline per image, seconds")
    p.add_argument("--language", default="", help="language of the guidance: en (default) or de")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="fetch a job's report from a running server")
    p.add_argument("job_id")
    p.add_argument("--json", action="store_true")
    p.add_argument("--addr")
    p.add_argument("--api-key")
    p.add_argument("--language", default="", help="language of the guidance: en (default) or de")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare", help="pipeline loss analysis: what a processing step did to an image (running server)"
    )
    p.add_argument("original", type=Path, metavar="ORIGINAL", help="the image before the step")
    p.add_argument("processed", type=Path, metavar="PROCESSED", help="the same image after the step")
    p.add_argument("--language", default="", help="language of the guidance: en (default) or de")
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    p.add_argument("--addr", help="server address (default IDETEX_GRPC_ADDR)")
    p.add_argument("--api-key", help="API key (default IDETEX_API_KEY, else var/dev-api-key)")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline, seconds")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "html", help="validate a folder against a running server; write an HTML report per image + index.html"
    )
    p.add_argument("folder", type=Path, metavar="IMAGE_DIR", help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the HTML files")
    p.add_argument("--profile", default="default", help=PROFILE_HELP)
    p.add_argument("--addr", help="server address (default IDETEX_GRPC_ADDR)")
    p.add_argument("--api-key", help="API key (default IDETEX_API_KEY, else var/dev-api-key)")
    p.add_argument("--timeout", type=float, default=60.0, help="deadline per image, seconds")
    p.add_argument("--language", default="", help="language of the guidance: en (default) or de")
    p.set_defaults(func=cmd_html)

    p = sub.add_parser("merchant", help="manage merchants")
    msub = p.add_subparsers(dest="merchant_command", required=True, metavar="ACTION")
    c = msub.add_parser("create", help="create a merchant and print its id and API key")
    c.add_argument("name")
    c.add_argument("--webhook-url", default=None)
    c.add_argument(
        "--model-choice",
        choices=("default", "mllm", "both"),
        default=None,
        help="which model answers this merchant's jobs (default: the profile's or IDETEX_MODEL_CHOICE)",
    )
    c.set_defaults(func=cmd_merchant_create)
    c = msub.add_parser("set-model", help="set (or with 'inherit' clear) a merchant's model choice")
    c.add_argument("merchant_id")
    c.add_argument("model_choice", choices=("default", "mllm", "both", "inherit"))
    c.set_defaults(func=cmd_merchant_set_model)
    c = msub.add_parser(
        "set-policy",
        help="override a marketplace profile's thresholds and verdict policy for one merchant",
        description="Keys: the profile's thresholds (min_long_side, recommended_long_side, "
        "min_product_fill, min_white_border_fraction, min_jpeg_quality, max_megapixels, max_file_bytes, "
        "white_background, no_borders, no_text_or_watermarks) and its verdict policy (reject_grades, "
        "warn_grades, reject_key_severities, warn_key_severities, reject_any_severe, "
        "reject_on_required_failure, warn_on_recommended_failure). `none` switches an optional rule off; "
        "sets are comma-separated. See docs/configuration.md.",
    )
    c.add_argument("merchant_id")
    c.add_argument("--profile", required=True, help=PROFILE_HELP)
    c.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--unset", action="append", default=[], metavar="KEY", help="back to the profile's value")
    c.add_argument("--clear", action="store_true", help="drop every override of the profile first")
    c.set_defaults(func=cmd_merchant_policy)
    c = msub.add_parser("show-policy", help="a merchant's policy overrides per profile")
    c.add_argument("merchant_id")
    c.set_defaults(func=cmd_merchant_policy)

    p = sub.add_parser("webhook", help="manage a merchant's webhook endpoints and deliveries")
    wsub = p.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    c = wsub.add_parser("add", help="add an endpoint and print its id and secret")
    c.add_argument("merchant_id")
    c.add_argument("url")
    c.add_argument("--events", default="", help="comma-separated events (default: all)")
    c.set_defaults(func=cmd_webhook)
    c = wsub.add_parser("list", help="the merchant's endpoints")
    c.add_argument("merchant_id")
    c.set_defaults(func=cmd_webhook)
    for action in ("enable", "disable", "remove"):
        c = wsub.add_parser(action, help=f"{action} an endpoint")
        c.add_argument("merchant_id")
        c.add_argument("endpoint_id")
        c.set_defaults(func=cmd_webhook)
    c = wsub.add_parser("deliveries", help="delivery attempts, newest first")
    c.add_argument("merchant_id")
    c.add_argument("--endpoint", default="")
    c.add_argument("--message", default="", help="a webhook-id")
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(func=cmd_webhook)
    c = wsub.add_parser("redeliver", help="queue a logged message again")
    c.add_argument("merchant_id")
    c.add_argument("webhook_id")
    c.set_defaults(func=cmd_webhook)

    p = sub.add_parser("audit", help="audit a catalogue in S3 (start, follow, status, cancel, resume)")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    c = asub.add_parser("start", help="start an audit and follow it with a progress bar")
    c.add_argument("merchant_id")
    c.add_argument("source", help="s3://bucket/prefix, s3://.../manifest.csv or s3://.../manifest.json")
    c.add_argument("--dest", required=True, help="s3://bucket/prefix for report.csv and summary.json")
    c.add_argument("--profile", default="default")
    c.add_argument("--no-follow", action="store_true", help="print the audit id and return")
    c.set_defaults(func=cmd_audit)
    for action in ("status", "follow", "cancel", "resume"):
        c = asub.add_parser(action, help=f"{action} an audit")
        c.add_argument("merchant_id")
        c.add_argument("audit_id")
        c.set_defaults(func=cmd_audit)

    p = sub.add_parser("predict", help="run every image of a folder through Triton; write predictions JSON")
    p.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output JSON (list of predictions)")
    p.add_argument("--triton-url", default=None, help="host:port of a running Triton (default: start one)")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--params", default="", help="post-processing parameters JSON")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "challenge", help="write MIPI 2025 submission files (description, grounding, perception) for a folder"
    )
    p.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the three JSON files")
    p.add_argument("--questions", type=Path, default=None, help="benchmark MCQ JSON (perception questions)")
    p.add_argument("--regions", type=Path, default=None, help="benchmark grounding JSON (region questions)")
    p.add_argument("--model", choices=("default", "mllm"), default="default")
    p.add_argument("--triton-url", default=None, help="Triton for the default model (default: start one)")
    p.add_argument("--vlm-url", default="", help="Triton HTTP address of the MLLM (default: IDETEX_VLM_URL)")
    p.set_defaults(func=cmd_challenge)

    p = sub.add_parser("eval", help="score predictions against labels with the challenge metrics")
    p.add_argument("--preds", type=Path, required=True)
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(func=cmd_migrate)
    return parser


# ---------------------------------------------------------------- server side


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from service.serve import parse_ports, serve

    return serve(settings, workers=args.workers, pool=args.pool, triton_ports=parse_ports(args.triton_ports))


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from service.serve import serve_api

    return serve_api(settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from service.serve import prepare

    prepare(settings)
    print(f"database at head: {settings.database_url}")
    return 0


def cmd_merchant_create(args: argparse.Namespace, settings: Settings) -> int:
    from service.bootstrap import build
    from service.serve import prepare

    prepare(settings)
    container = build(settings)
    try:
        merchant_id, api_key = container.create_merchant(
            args.name, webhook_url=args.webhook_url, model_choice=args.model_choice
        )
    finally:
        container.close()
    print(f"merchant_id: {merchant_id}\napi_key: {api_key}\n(the key is shown once; it is stored hashed)")
    return 0


def cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from service.bootstrap import build
    from service.serve import prepare

    prepare(settings)
    container = build(settings)
    try:
        action = args.webhook_command
        if action == "add":
            events = [e for e in args.events.split(",") if e.strip()] or None
            view = container.create_webhook(args.merchant_id, args.url, events)
            print(f"endpoint_id: {view.id}\nsecret: {view.secret}\nevents: {', '.join(view.events)}")
        elif action == "list":
            for v in container.list_webhooks(args.merchant_id):
                state = "enabled" if v.enabled else f"disabled ({v.disabled_reason})"
                print(f"{v.id}  {v.url}  [{', '.join(v.events)}]  {state}")
        elif action in ("enable", "disable"):
            container.update_webhook(args.merchant_id, args.endpoint_id, enabled=action == "enable")
            print(f"{args.endpoint_id} {action}d")
        elif action == "remove":
            container.delete_webhook(args.merchant_id, args.endpoint_id)
            print(f"{args.endpoint_id} removed")
        elif action == "deliveries":
            for d in container.list_webhook_deliveries(
                args.merchant_id, args.endpoint, args.message, args.limit
            ):
                latency = "-" if d.latency_ms is None else f"{d.latency_ms:.0f} ms"
                print(
                    f"{d.delivered_at:%Y-%m-%d %H:%M:%S}  {d.webhook_id}  #{d.attempt}  {d.event}  "
                    f"{d.status_code or '-'}  {d.outcome}  {latency}  {d.error or ''}"
                )
        elif action == "redeliver":
            container.redeliver_webhook(args.merchant_id, args.webhook_id)
            print(f"{args.webhook_id} queued again")
    finally:
        container.close()
    return 0


def _audit_line(view: Any) -> str:
    width = 30
    total = max(view.total, 1)
    filled = round(width * view.finished / total) if view.listing_done else 0
    bar = "#" * filled + "-" * (width - filled)
    counts = " ".join(f"{k.lower()} {v}" for k, v in sorted(view.counts.items()))
    listed = "" if view.listing_done else " (listing)"
    rate = f"{view.images_per_s:.1f} img/s"
    return f"[{bar}] {view.finished}/{view.total}{listed}  {counts}  {rate}  {view.status}"


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from service.bootstrap import build
    from service.serve import prepare

    prepare(settings)
    container = build(settings)
    try:
        action = args.audit_command
        if action == "start":
            view = container.start_audit(args.merchant_id, args.source, args.profile, args.dest)
            print(f"audit_id: {view.id}", flush=True)
            if args.no_follow:
                return 0
        elif action == "cancel":
            view = container.cancel_audit(args.merchant_id, args.audit_id)
        elif action == "resume":
            view = container.resume_audit(args.merchant_id, args.audit_id)
        else:
            view = container.get_audit(args.merchant_id, args.audit_id)
        if action in ("start", "follow"):
            while view.status == "RUNNING":
                print(f"\r{_audit_line(view)}", end="", file=sys.stderr, flush=True)
                time.sleep(1.0)
                view = container.get_audit(args.merchant_id, view.id)
            print(f"\r{_audit_line(view)}", file=sys.stderr, flush=True)
        else:
            print(_audit_line(view))
        if view.report_uri:
            print(f"report: {view.report_uri}\nsummary: {view.summary_uri}")
        if view.error:
            print(f"error: {view.error}", file=sys.stderr)
    finally:
        container.close()
    return 0 if view.status in ("RUNNING", "DONE", "CANCELLED") else 1


def cmd_merchant_set_model(args: argparse.Namespace, settings: Settings) -> int:
    from service.bootstrap import build
    from service.serve import prepare

    prepare(settings)
    container = build(settings)
    choice = None if args.model_choice == "inherit" else args.model_choice
    try:
        container.set_model_choice(args.merchant_id, choice)
    finally:
        container.close()
    print(
        f"merchant {args.merchant_id}: model choice {choice or 'inherited (profile or IDETEX_MODEL_CHOICE)'}"
    )
    return 0


def cmd_merchant_policy(args: argparse.Namespace, settings: Settings) -> int:
    from service.bootstrap import build
    from service.domain.policy import format_value, parse_assignments
    from service.serve import prepare

    values = parse_assignments(getattr(args, "assignments", []))  # bad keys fail before any I/O
    prepare(settings)
    container = build(settings)
    try:
        if args.merchant_command == "set-policy":
            if not (values or args.unset or args.clear):
                print("nothing to change: give --set KEY=VALUE, --unset KEY or --clear", file=sys.stderr)
                return 2
            current = container.set_policy(args.merchant_id, args.profile, values, args.unset, args.clear)
            shown = {args.profile: current}
        else:
            shown = container.policies(args.merchant_id)
    finally:
        container.close()
    for profile, overrides in shown.items():
        pairs = " ".join(f"{k}={format_value(v)}" for k, v in overrides.items())
        print(f"merchant {args.merchant_id} {profile}: {pairs or 'profile defaults'}")
    if not shown:
        print(f"merchant {args.merchant_id}: no overrides (profile defaults)")
    return 0


# ---------------------------------------------------------------- client side


def _api_key(args: argparse.Namespace) -> str:
    from service.serve import DEV_KEY_FILE

    key = args.api_key or os.environ.get("IDETEX_API_KEY", "")
    if not key and DEV_KEY_FILE.exists():
        key = DEV_KEY_FILE.read_text().strip()
    if not key:
        raise SystemExit(
            "no API key: pass --api-key, set IDETEX_API_KEY, or run `idetex serve` in development"
        )
    return key


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    import grpc

    from service.api.client import ValidationClient, describe_error, format_response, response_to_json
    from service.api.gen.idetex.v1 import validation_pb2 as pb

    mode = pb.MODE_ASYNC if args.async_ else pb.MODE_SYNC
    failures = 0
    results: list[dict[str, object]] = []
    addr = args.addr or settings.grpc_addr
    with ValidationClient(addr, _api_key(args), unary_limit_bytes=settings.unary_limit_bytes) as client:
        for path in args.images:
            try:
                response = client.validate_file(
                    path, profile=args.profile, mode=mode, timeout_s=args.timeout, language=args.language
                )
            except grpc.RpcError as err:
                failures += 1
                if args.json:
                    call: grpc.Call = err  # type: ignore[assignment]
                    results.append({"image": str(path), "error": call.code().name, "message": call.details()})
                else:
                    print(f"{path}: {describe_error(err)}", file=sys.stderr)
                continue
            except OSError as err:
                failures += 1
                print(f"{path}: {err}", file=sys.stderr)
                continue
            if args.json:
                results.append({"image": str(path), **response_to_json(response)})
            else:
                print(format_response(response, title=str(path)))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failures else 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from service.api.client import ValidationClient, format_response, response_to_json

    with ValidationClient(args.addr or settings.grpc_addr, _api_key(args)) as client:
        response = client.get_report(args.job_id, language=args.language)
    print(json.dumps(response_to_json(response), indent=2) if args.json else format_response(response))
    return 0


def cmd_html(args: argparse.Namespace, settings: Settings) -> int:
    from service.api.client import ValidationClient
    from service.html_export import export_folder

    if not args.folder.is_dir():
        print(f"{args.folder}: not a folder", file=sys.stderr)
        return 2
    addr = args.addr or settings.grpc_addr
    with ValidationClient(addr, _api_key(args), unary_limit_bytes=settings.unary_limit_bytes) as client:
        summary = export_folder(
            client,
            args.folder,
            args.out,
            profile=args.profile,
            timeout_s=args.timeout,
            language=args.language,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    print(f"{len(summary.written)} reports, {summary.failed} failed: {summary.index}")
    return 1 if summary.failed or not summary.written else 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    import grpc
    from google.protobuf import json_format

    from service.api.client import ValidationClient, describe_error, format_comparison

    original, processed = args.original.read_bytes(), args.processed.read_bytes()
    addr = args.addr or settings.grpc_addr
    with ValidationClient(addr, _api_key(args), unary_limit_bytes=settings.unary_limit_bytes) as client:
        try:
            response = client.compare(original, processed, language=args.language, timeout_s=args.timeout)
        except grpc.RpcError as err:
            print(describe_error(err), file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True), indent=2))
    else:
        print(format_comparison(response, title=f"{args.original} -> {args.processed}"))
    return 0


# ---------------------------------------------------------------- model side


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from service import predict
    from service.bootstrap import postprocess_params_path

    summary = predict.run(
        args.images,
        args.out,
        triton_url=args.triton_url,
        protocol=args.protocol,
        batch_size=args.batch_size,
        params_path=postprocess_params_path(args.params or settings.postprocess_params),
    )
    return 0 if summary.predicted else 1


def cmd_challenge(args: argparse.Namespace, settings: Settings) -> int:
    from service import challenge
    from service.bootstrap import postprocess_params_path

    if args.model == "mllm" and not (args.vlm_url or settings.vlm_url):
        print("--model mllm needs --vlm-url or IDETEX_VLM_URL (see docs/mllm.md)", file=sys.stderr)
        return 2
    summary = challenge.run(
        args.images,
        args.out,
        model=args.model,
        questions=args.questions,
        regions=args.regions,
        triton_url=args.triton_url,
        vlm_url=args.vlm_url or settings.vlm_url,
        vlm_model=settings.vlm_model,
        vlm_family=settings.vlm_family,
        params_path=postprocess_params_path(settings.postprocess_params),
    )
    return 0 if summary.described else 1


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from service.iqa.metrics import evaluate

    metrics = evaluate(json.loads(args.preds.read_text()), json.loads(args.labels.read_text()))
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    for name, value in metrics.items():
        if isinstance(value, int | float | str):
            print(f"{name:32s} {value:.4f}" if isinstance(value, float) else f"{name:32s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
