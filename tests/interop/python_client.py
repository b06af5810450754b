"""A Python client of the Enforcer's gRPC API, generated from `proto/`.

Shows that another language's standard gRPC tooling can use the engine with
nothing but the published `.proto` files: the stubs are generated at run time
with `python -m grpc_tools.protoc` into a temporary directory (nothing
generated is kept), then used against a running engine to

1. ask grpc.health.v1 whether the engine is SERVING,
2. evaluate an ordinary message (allowed, no action),
3. evaluate a forward to many chats at once (the example mass-forwarding
   rule limits the forwarding account),
4. resend that event (a retry: the first decision, marked duplicate),
5. send an event without an actor (refused with INVALID_ARGUMENT, naming
   `event.actor`).

Usage:

    python3 -m pip install -r tests/interop/requirements.txt
    python3 tests/interop/python_client.py 127.0.0.1:50051

Prints one line per check and a summary; exits 0 when every check passed and
1, with the reason, at the first one that did not (2 when the gRPC packages
are not installed).
"""

import importlib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
# The repository's proto/ directory: this file is tests/interop/python_client.py.
PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
PROTO_FILE = PROTO_ROOT / "enforcement" / "v1" / "enforcement.proto"

# Seconds to wait for the connection and for each call: a local engine
# answers in milliseconds, so reaching this means something is wrong.
TIMEOUT = 10.0

# The example mass-forwarding rule limits forwarding from this many chats in
# one forward (FANOUT_LIMIT in plugins/rules/mass-forwarding/src/lib.rs).
FANOUT_LIMIT = 20

try:
    import grpc
    import grpc_tools  # noqa: F401  (only its `protoc` module is run, below)
    from google.protobuf.timestamp_pb2 import Timestamp
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError as missing:
    print(
        f"interop: the Python gRPC packages are missing ({missing}); install them with\n"
        f"    python3 -m pip install -r {REQUIREMENTS}",
        file=sys.stderr,
    )
    sys.exit(2)


class CheckFailed(Exception):
    """A check that did not hold; its message says what was expected."""


def check(condition, message):
    """Raise CheckFailed with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def generate_stubs(out_dir):
    """Generate the message and service modules for enforcement.proto into
    `out_dir` with the standard generator, and import them.

    `python -m grpc_tools.protoc` adds the include path of the well-known
    types itself, so `google/protobuf/timestamp.proto` resolves without the
    repository shipping a copy.
    """
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_FILE),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    check(
        result.returncode == 0,
        f"protoc failed (exit {result.returncode}) on {PROTO_FILE}:\n{result.stderr}",
    )
    # The generated modules import each other as `enforcement.v1.…`, so the
    # output directory goes on the import path (a namespace package: protoc
    # writes no __init__.py).
    sys.path.insert(0, str(out_dir))
    pb2 = importlib.import_module("enforcement.v1.enforcement_pb2")
    pb2_grpc = importlib.import_module("enforcement.v1.enforcement_pb2_grpc")
    return pb2, pb2_grpc


def now():
    """The current time as a Timestamp: the engine refuses events dated more
    than five minutes ahead of its clock, and rules read event time as now."""
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


def account(pb2, name):
    return pb2.Entity(type=pb2.ENTITY_TYPE_ACCOUNT, id=name)


def check_health(channel):
    """grpc.health.v1 Check, for the whole server and for the data plane."""
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "enforcement.v1.Enforcement"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        check(
            reply.status == health_pb2.HealthCheckResponse.SERVING,
            f"health of {service or 'the server'!r} is {status}, expected SERVING",
        )
        print(f"ok: health {service or '(server)'}: {status}")


def evaluate(stub, pb2, event):
    """Evaluate `event` and check what every decision must satisfy."""
    reply = stub.Evaluate(pb2.EvaluateRequest(event=event), timeout=TIMEOUT)
    decision = reply.decision
    check(
        decision.id == f"dec-{event.id}",
        f"decision id is {decision.id!r}, expected 'dec-{event.id}'",
    )
    check(
        decision.event.id == event.id and decision.event.kind == event.kind,
        f"the decision is about event {decision.event.id!r} ({decision.event.kind}), "
        f"expected {event.id!r} ({event.kind})",
    )
    check(decision.sequence > 0, f"decision sequence is {decision.sequence}, expected > 0")
    check(decision.policy_version != "", "the decision names no policy version")
    return reply


def severity_name(pb2, severity):
    return pb2.Severity.Name(severity)


def check_ordinary_message(stub, pb2, run):
    """An ordinary message between contacts from an old account: allowed."""
    event = pb2.Event(
        id=f"interop-{run}-message",
        kind="message.sent",
        occurred_at=now(),
        actor=account(pb2, f"interop-{run}-alice"),
        target=account(pb2, f"interop-{run}-bob"),
        attributes={
            "actor_age_seconds": pb2.Value(int=400 * 86400),
            "to_contact": pb2.Value(boolean=True),
            "has_media": pb2.Value(boolean=False),
            "message_id": pb2.Value(text=f"m-{run}"),
        },
    )
    reply = evaluate(stub, pb2, event)
    outcome = reply.decision.outcome
    check(not reply.duplicate, "a first evaluation is marked duplicate")
    check(
        outcome.severity == pb2.SEVERITY_ALLOW,
        f"an ordinary message got {severity_name(pb2, outcome.severity)}, expected SEVERITY_ALLOW",
    )
    check(len(outcome.actions) == 0, f"an ordinary message got actions: {list(outcome.actions)}")
    print(f"ok: {event.kind} -> {reply.decision.id}: {severity_name(pb2, outcome.severity)}")


def check_mass_forward(stub, pb2, run):
    """A forward to twice the fanout limit: the example rule limits the
    forwarding account's forwarding. Returns the event, for the retry."""
    forwarder = f"interop-{run}-mallory"
    event = pb2.Event(
        id=f"interop-{run}-forward",
        kind="message.forwarded",
        occurred_at=now(),
        actor=account(pb2, forwarder),
        target=pb2.Entity(type=pb2.ENTITY_TYPE_GROUP, id=f"interop-{run}-group"),
        attributes={
            "chat_count": pb2.Value(int=2 * FANOUT_LIMIT),
            "forward_depth": pb2.Value(int=3),
            "message_id": pb2.Value(text=f"f-{run}"),
        },
    )
    reply = evaluate(stub, pb2, event)
    decision = reply.decision
    outcome = decision.outcome
    check(not reply.duplicate, "a first evaluation is marked duplicate")
    check(
        outcome.severity == pb2.SEVERITY_LIMIT,
        f"a forward to {2 * FANOUT_LIMIT} chats got {severity_name(pb2, outcome.severity)}, "
        "expected SEVERITY_LIMIT",
    )
    wanted = pb2.EnforcementAction(
        action=pb2.ACTION_TYPE_LIMIT_FORWARDING, entity=account(pb2, forwarder)
    )
    check(
        any(action == wanted for action in outcome.actions),
        f"the actions are {[str(a) for a in outcome.actions]}, expected "
        f"ACTION_TYPE_LIMIT_FORWARDING on account {forwarder!r}",
    )
    reports = {report.rule: report for report in decision.rules}
    check("mass-forwarding" in reports, f"no report from mass-forwarding: {sorted(reports)}")
    check(
        reports["mass-forwarding"].severity == pb2.SEVERITY_LIMIT,
        "the mass-forwarding report says "
        f"{severity_name(pb2, reports['mass-forwarding'].severity)}, expected SEVERITY_LIMIT",
    )
    print(
        f"ok: {event.kind} (chat_count {2 * FANOUT_LIMIT}) -> {decision.id}: "
        f"{severity_name(pb2, outcome.severity)}, "
        f"{pb2.ActionType.Name(wanted.action)} on account {forwarder}"
    )
    return reply


def check_retry(stub, pb2, first):
    """The same event again is a retry: its first decision, marked duplicate."""
    reply = evaluate(stub, pb2, first.decision.event)
    check(reply.duplicate, "a resent event is not marked duplicate")
    check(
        reply.decision.outcome == first.decision.outcome,
        f"a resent event got {reply.decision.outcome}, expected its first outcome "
        f"{first.decision.outcome}",
    )
    print(f"ok: resent {first.decision.event.id} -> duplicate, same outcome")


def check_missing_actor(stub, pb2, run):
    """An event without an actor is refused, naming the field."""
    event = pb2.Event(
        id=f"interop-{run}-no-actor",
        kind="message.sent",
        occurred_at=now(),
    )
    try:
        reply = stub.Evaluate(pb2.EvaluateRequest(event=event), timeout=TIMEOUT)
    except grpc.RpcError as error:
        check(
            error.code() == grpc.StatusCode.INVALID_ARGUMENT,
            f"an event without an actor got {error.code()} ({error.details()!r}), "
            "expected INVALID_ARGUMENT",
        )
        check(
            "event.actor" in (error.details() or ""),
            f"the error {error.details()!r} does not name the field event.actor",
        )
        print(f"ok: event without actor -> INVALID_ARGUMENT: {error.details()}")
        return
    raise CheckFailed(f"an event without an actor was accepted: {reply}")


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} HOST:PORT", file=sys.stderr)
        return 2
    address = argv[1]
    # A fresh suffix per run keeps event ids and accounts apart from earlier
    # runs against the same engine (a reused event id would be a retry).
    run = uuid.uuid4().hex[:12]

    with tempfile.TemporaryDirectory(prefix="enforcer-interop-") as out_dir:
        try:
            pb2, pb2_grpc = generate_stubs(out_dir)
            print(f"ok: generated Python stubs from {PROTO_FILE.relative_to(PROTO_ROOT.parent)}")
            with grpc.insecure_channel(address) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
                except grpc.FutureTimeoutError:
                    raise CheckFailed(f"could not connect to {address} in {TIMEOUT:.0f}s")
                stub = pb2_grpc.EnforcementStub(channel)
                check_health(channel)
                check_ordinary_message(stub, pb2, run)
                forwarded = check_mass_forward(stub, pb2, run)
                check_retry(stub, pb2, forwarded)
                check_missing_actor(stub, pb2, run)
        except CheckFailed as failure:
            print(f"interop: FAILED: {failure}", file=sys.stderr)
            return 1
        except grpc.RpcError as error:
            # An unexpected status from a call that should have succeeded.
            print(
                f"interop: FAILED: a call to {address} failed with {error.code()}: "
                f"{error.details()}",
                file=sys.stderr,
            )
            return 1

    print(f"interop: all checks passed against {address} (grpcio {grpc.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
