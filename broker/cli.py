"""`broker` command line: serve, db upgrade, send, find, messages, mpps, outbox.

Exit status: 0 done; 1 the operation ran and reports a failure (a refused message, no
worklist answers); 2 bad configuration or usage; 3 network or system error."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from broker.config import BrokerConfig, ConfigError, load_config
from broker.display import lines, visible
from broker.domain.errors import DomainError
from broker.hl7.mllp import exchange
from broker.hl7.sender import acknowledgement_code
from broker.mapping.profile import ProfileError
from broker.simulate.hl7_peer import load_message, on_day
from broker.simulate.scenario import ScenarioError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

T = TypeVar("T")


def _config(path: str | None) -> BrokerConfig:
    """The file given (none: the defaults) with the BROKER__... environment over it."""
    return load_config(Path(path) if path else None, os.environ)


def _serve(args: argparse.Namespace) -> int:
    from broker.app import Broker
    from broker.logs import configure as configure_logging

    config = _config(args.config)
    configure_logging(config.log_level, config.log_format)
    broker = Broker(config)  # never creates the database (DatabaseMissing: exit 2)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    broker.start()
    # What starting built (modules, the DICOM dictionary, the web app, the schema) lives
    # until exit: frozen, it is out of every later full collection's walk, such as the
    # one pynetdicom's server makes every 60 turns of its accept loop.
    gc.freeze()
    # Short waits: a signal delivered to another thread only runs its Python handler
    # once the main thread executes bytecode again; an untimed wait could block forever.
    while not stop.wait(0.5):
        pass
    broker.stop()
    return 0


def _init(args: argparse.Namespace) -> int:
    from broker.site import SiteExists, init_site

    try:
        made = init_site(Path(args.directory), args.profile)
    except SiteExists as exc:
        print(exc, file=sys.stderr)
        return 2
    for path in made:
        print(f"wrote {path}")
    print(f"start it with: broker serve --config {made[0]}")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the database; create it only when asked (`--create`), so a database that
    went missing is reported instead of silently replaced by an empty one."""
    from broker.store.migrate import upgrade

    upgrade(_config(args.config).database.url, create=args.create)
    print("database is at the newest schema")
    return 0


def _send(args: argparse.Namespace) -> int:
    """Send HL7 files over MLLP and print each ACK; exit 1 if any was not AA/CA."""
    failures = 0
    with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
        for name in _progress(args.files, "sent", args.progress):
            payload = load_message(name)
            if args.today:
                payload = on_day(payload, date.today())
            reply = exchange(sock, payload)
            code, text = acknowledgement_code(reply)
            print(visible(f"{name}: {code} {text}".rstrip()))
            failures += code not in ("AA", "CA")
    return 1 if failures else 0


def _messages_list(args: argparse.Namespace) -> int:
    from broker.store.db import build_engine
    from broker.store.inbound_log import recent

    engine = build_engine(_config(args.config).database.url)
    print(f"{'id':>7}  {'received':19}  {'sender':24}  {'control id':20}  {'type':9}  answer")
    for m in reversed(recent(engine, limit=args.limit, refused_only=args.refused)):
        error = f" {m.error_code} {m.error_location}".rstrip() if m.answer != "AA" else ""
        print(visible(
            f"{m.id:>7}  {m.received_at:%Y-%m-%d %H:%M:%S}  {m.sender[:24]:24}  "
            f"{m.control_id[:20]:20}  {m.message_type:9}  {m.answer}{error}"
        ))  # fmt: skip
    engine.dispose()
    return 0


def _messages_replay(args: argparse.Namespace) -> int:
    """Apply refused messages again, by log id; exit 1 if any is still refused."""
    from broker.app import Services
    from broker.domain.audit import Requestor
    from broker.store.inbound_log import key_of

    services = Services(_config(args.config))
    failures = 0
    try:
        for message_id in _progress(args.ids, "replayed", args.progress):
            key = key_of(services.engine, message_id)
            if key is None:
                print(f"{message_id}: no such message")
                failures += 1
                continue
            try:
                record = services.intake.replay(*key, Requestor("broker-cli"))
            except DomainError as exc:
                print(f"{message_id}: not replayed: {exc}")
                failures += 1
                continue
            print(visible(f"{message_id}: {record.answer} {record.error_code} {record.error}".rstrip()))
            failures += record.answer != "AA"
    finally:
        services.close()
    return 1 if failures else 0


def _mpps_exceptions(args: argparse.Namespace) -> int:
    from broker.store.db import build_engine
    from broker.store.mpps_log import exceptions

    engine = build_engine(_config(args.config).database.url)
    print(f"{'SOP Instance UID':64}  {'status':12}  {'station':16}  {'started':15}  {'patient ID':16}  why not linked")
    for step in exceptions(engine):
        print(visible(
            f"{step.sop_instance_uid:64}  {step.status:12}  {step.performed_station_ae:16}  {step.started:15}  "
            f"{step.patient_id:16}  {step.reason}"
        ))  # fmt: skip
    engine.dispose()
    return 0


def _mpps_candidates(args: argparse.Namespace) -> int:
    """The orders of the MPPS's own patient it may be reconciled with."""
    from broker.app import Services

    services = Services(_config(args.config))
    try:
        found = services.pps_manager.candidates(args.uid)
    except DomainError as exc:
        print(f"no candidates: {exc}")
        return 1
    finally:
        services.close()
    print(f"{'accession':16}  {'patient ID':16}  {'requested procedures':24}  steps on the worklist")
    for c in found:
        procedures, steps = " ".join(c.requested_procedure_ids), " ".join(c.sps_ids)
        print(visible(f"{c.accession_number:16}  {c.patient_id:16}  {procedures:24}  {steps}"))
    return 0


def _mpps_reconcile(args: argparse.Namespace) -> int:
    """Link an MPPS exception to an order of its patient (any patient's with --force,
    audited); the order's steps then follow the MPPS."""
    from broker.app import Services
    from broker.domain.audit import Requestor

    services = Services(_config(args.config))
    try:
        services.pps_manager.reconcile(
            args.uid, args.accession, args.requested_procedure_id, force=args.force, requestor=Requestor("broker-cli")
        )
    except DomainError as exc:
        print(f"not reconciled: {exc}")
        return 1
    finally:
        services.close()
    print(f"{args.uid}: linked to accession {args.accession}{' (forced)' if args.force else ''}")
    return 0


def _outbox_list(args: argparse.Namespace) -> int:
    """One line per message, with the destination's last answer: code, MSA-3 (or the
    DIMSE Error Comment, or why nothing came back) and the ERR segments."""
    from broker.store.db import build_engine
    from broker.store.outbox import SqlOutboxQueue

    engine = build_engine(_config(args.config).database.url)
    print(f"{'id':>7}  {'created':19}  {'destination':12}  {'order':24}  {'state':7}  {'tries':>5}  answer")
    for e in SqlOutboxQueue(engine).listing(args.state, args.limit):
        answer = f"{e.answer_code or '-':6}  {(e.answer_text or e.last_error)[:60]}"
        errors = f"  ERR {e.answer_error.replace(chr(10), ' ~ ')[:80]}" if e.answer_error else ""
        print(visible(
            f"{e.id:>7}  {e.created_at:%Y-%m-%d %H:%M:%S}  {e.destination[:12]:12}  {e.ordering_key[:24]:24}  "
            f"{e.state:7}  {e.attempts:>5}  {answer}{errors}".rstrip()
        ))  # fmt: skip
    engine.dispose()
    return 0


def _outbox_requeue(args: argparse.Namespace) -> int:
    """Dead letters sent again (then their orders' later messages); audited."""
    return _dead_letters(args, "requeued")


def _outbox_skip(args: argparse.Namespace) -> int:
    """Dead letters dropped (their orders' later messages go on); audited."""
    return _dead_letters(args, "skipped")


def _dead_letters(args: argparse.Namespace, action: str) -> int:
    """Exit 1 when some id was no dead letter (unknown, or already moved on)."""
    import getpass

    from broker.app import Services
    from broker.domain.audit import Requestor

    services = Services(_config(args.config))
    try:
        act = services.dead_letters.requeue if action == "requeued" else services.dead_letters.skip
        done = act(args.ids, Requestor(f"cli {getpass.getuser()}"))
    finally:
        services.close()
    print(f"{action} {len(done)} of {len(args.ids)}")
    return 0 if len(done) == len(args.ids) else 1


def _conformance(args: argparse.Namespace) -> int:
    """Write the Conformance Statement for this configuration (stdout without --output)."""
    from broker.conformance.statement import render

    text = render(_config(args.config), args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _outbox_retry(args: argparse.Namespace) -> int:
    """Waiting messages due now: after a peer's outage is over, skip the backoff."""
    from datetime import datetime

    from broker.store.db import build_engine
    from broker.store.outbox import SqlOutboxQueue

    engine = build_engine(_config(args.config).database.url)
    count = SqlOutboxQueue(engine).retry_now(datetime.now(), args.destination)
    engine.dispose()
    print(f"{count} waiting message(s) due now")
    return 0


def _find(args: argparse.Namespace) -> int:
    """A worklist query as a modality makes it (RAD-5); exit 0 with answers, 1 with
    none or a failure status, 3 when the SCP cannot be reached."""
    from broker.dicom.mwl_scu import Peer, WorklistKeys, WorklistQueryError, find, identifier, row, table

    keys = WorklistKeys(args.station, args.modality, args.date, args.patient_id, args.accession, args.patient_name)
    if args.replay:
        return _replay(args)
    args.aet = args.aet or "BROKERFIND"
    if args.explain:
        return _explain(args, identifier(keys))
    try:
        answers = find(Peer(args.host, args.port, args.aet, args.aec, args.timeout), identifier(keys))
    except WorklistQueryError as exc:
        print(f"broker find: {exc}", file=sys.stderr)
        return 1
    if not answers:
        print("no matching worklist items", file=sys.stderr)
        return 1
    print(table([row(answer) for answer in answers]))
    return 0


def _explain(args: argparse.Namespace, query: Dataset) -> int:
    """`find --explain`: this broker's own matching, read from its database, for the
    calling AE `--aet`: every step of the query's days, answered or with what excluded it."""
    from broker.app import Services
    from broker.explain import explanation_table
    from broker.mapping.mwl import query_from_identifier

    services = Services(_config(args.config))
    try:
        fold = services.profile.dicom.fold_case_names
        explained = services.worklist.explain(query_from_identifier(query, fold_case_names=fold), args.aet)
    finally:
        services.close()
    print(explanation_table(explained))
    return 0 if any(not item.excluded_by for item in explained) else 1


def _replay(args: argparse.Namespace) -> int:
    """`find --replay BUNDLE`: the bundle's queries against any worklist SCP, as the
    bundle's station unless --aet says otherwise; exit 0 when every count and status is
    as captured, 1 otherwise, 2 not a bundle, 3 unreachable."""
    from broker.dicom.mwl_scu import Peer
    from broker.dicom.replay import BundleError, load, replay

    try:
        bundle = load(Path(args.replay))
    except BundleError as exc:
        print(f"broker find: {exc}", file=sys.stderr)
        return 2
    peer = Peer(args.host, args.port, args.aet or str(bundle.get("station", "BROKERFIND")), args.aec, args.timeout)
    outcomes = []
    for outcome in replay(bundle, peer):
        print(lines(outcome.line()), flush=True)
        outcomes.append(outcome)
    same = sum(o.same for o in outcomes)
    print(f"{same} of {len(outcomes)} queries answered as captured")
    return 0 if same == len(outcomes) else 1


def _date_key(text: str) -> str:
    from broker.dicom.mwl_scu import date_key  # pynetdicom only for the commands that use it

    return date_key(text)


def _progress(items: Sequence[T], verb: str, forced: bool) -> Iterator[T]:
    """Yield `items`, showing `3/120 sent` on stderr when it is a terminal (or when
    asked with --progress), so stdout stays one line per item for scripts."""
    if not (forced or sys.stderr.isatty()):
        yield from items
        return
    for done, item in enumerate(items):
        print(f"\r{done}/{len(items)} {verb}", end="", file=sys.stderr, flush=True)
        yield item
    print(f"\r{len(items)}/{len(items)} {verb}", file=sys.stderr, flush=True)


Run = Callable[[argparse.Namespace], int]


def _command(group: Any, name: str, help_text: str, run: Run, *, config: bool = True) -> argparse.ArgumentParser:
    """One sub-command; those that read the configuration take --config."""
    command: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    if config:
        command.add_argument("--config", help="YAML configuration file (see config.example.yaml)")
    command.set_defaults(run=run)
    return command


def _group(commands: Any, name: str, help_text: str) -> Any:
    return commands.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_command", required=True)


def _add_simulate(commands: Any) -> None:
    from broker.simulate.commands import register

    register(_group(commands, "simulate", "simulators: ris, modality, image-manager, scenario"), _command)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="IHE Scheduled Workflow broker")
    commands = parser.add_subparsers(dest="command", required=True)
    _command(commands, "serve", "start the HL7, DICOM and outbound services", _serve)
    init = _command(commands, "init", "write a new site's configuration, profile and database", _init, config=False)
    init.add_argument("directory", help="the site's folder (created if missing)")
    init.add_argument("--profile", default="ihe-swf", help="the shipped profile the site's own extends (jahis…)")
    db = _group(commands, "db", "database maintenance")
    db_upgrade = _command(db, "upgrade", "apply the schema migrations", _db_upgrade)
    db_upgrade.add_argument("--create", action="store_true", help="create the database first if it does not exist")

    messages = _group(commands, "messages", "the inbound HL7 log: list, replay")
    listing = _command(messages, "list", "recent inbound messages with their answers", _messages_list)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--refused", action="store_true", help="only messages answered AE/AR")
    replay = _command(messages, "replay", "apply refused messages again (by id from 'list')", _messages_replay)
    replay.add_argument("ids", nargs="+", type=int)
    replay.add_argument("--progress", action="store_true", help="show progress on stderr even when not a terminal")

    pps = _group(commands, "mpps", "performed procedure steps: exceptions, candidates, reconcile")
    _command(pps, "exceptions", "MPPS linked to no scheduled step, and why", _mpps_exceptions)
    candidates = _command(pps, "candidates", "orders of the MPPS's patient it may be linked to", _mpps_candidates)
    candidates.add_argument("uid", help="the MPPS SOP Instance UID (from 'exceptions')")
    reconcile = _command(pps, "reconcile", "link an MPPS exception to an order by accession", _mpps_reconcile)
    reconcile.add_argument("uid", help="the MPPS SOP Instance UID (from 'exceptions')")
    reconcile.add_argument("accession", help="the order's Accession Number")
    reconcile.add_argument("--requested-procedure-id", default="", help="only this procedure's steps")
    reconcile.add_argument(
        "--force", action="store_true", help="link even to another patient's order (audited, with the disagreement)"
    )

    outbox = _group(commands, "outbox", "outbound messages: list (dead letters too), requeue, skip, retry")
    outbox_list = _command(outbox, "list", "messages in one state, oldest first", _outbox_list)
    outbox_list.add_argument("--state", choices=["pending", "leased", "dead", "sent", "skipped"], default="dead")
    outbox_list.add_argument("--limit", type=int, default=50)
    requeue = _command(
        outbox, "requeue", "send dead letters again, then their orders' next (ids from 'list')", _outbox_requeue
    )
    requeue.add_argument("ids", nargs="+", type=int)
    skip = _command(outbox, "skip", "drop dead letters; their orders' next messages go on", _outbox_skip)
    skip.add_argument("ids", nargs="+", type=int)
    retry = _command(outbox, "retry", "waiting messages due now (the peer is back; skip the backoff)", _outbox_retry)
    retry.add_argument("--destination", help="only this destination (ris, an image manager's name, ...)")

    conformance = _command(commands, "conformance", "write the DICOM Conformance Statement", _conformance)
    conformance.add_argument("--format", choices=["markdown", "html"], default="markdown")
    conformance.add_argument("--output", help="file to write (default: standard output)")
    _add_simulate(commands)

    send = _command(commands, "send", "send HL7 message files over MLLP and print the ACKs", _send, config=False)
    send.add_argument("files", nargs="+", help="files holding one HL7 message each, or names in the hl7/ catalog")
    send.add_argument("--today", action="store_true", help="move the messages' dates to today (samples)")
    send.add_argument("--host", default="127.0.0.1")
    send.add_argument("--port", type=int, default=2575)
    send.add_argument("--timeout", type=float, default=30)
    send.add_argument("--progress", action="store_true", help="show progress on stderr even when not a terminal")
    _find_options(_command(commands, "find", FIND_HELP, _find, config=False))
    return parser


FIND_HELP = "query a Modality Worklist SCP (this broker or another) and print the answers as a table"


def _find_options(find: argparse.ArgumentParser) -> None:
    find.description = (
        "Modality Worklist C-FIND, as a modality asks it. Exit status: 0 answers printed, "
        "1 no answers or a failure status, 3 SCP unreachable (refused, rejected, aborted)."
    )
    find.add_argument("host", nargs="?", default="127.0.0.1", help="the worklist SCP (default 127.0.0.1)")
    find.add_argument("port", nargs="?", type=int, default=11112, help="its port (default 11112)")
    find.add_argument("--aet", help="our calling AE title (default BROKERFIND; with --replay, the bundle's station)")
    find.add_argument("--aec", default="BROKER", help="the SCP's AE title (default BROKER)")
    find.add_argument("--station", default="", help="Scheduled Station AE Title, e.g. CT01")
    find.add_argument("--modality", default="", help="e.g. CT, MR")
    find.add_argument(
        "--date", default="", type=_date_key, help="SPS start date: YYYYMMDD, YYYYMMDD-YYYYMMDD, or 'today'"
    )
    find.add_argument("--patient-id", default="")
    find.add_argument("--accession", default="")
    find.add_argument("--patient-name", default="", help="wildcards * and ? allowed, e.g. 'DOE^*'")
    find.add_argument("--timeout", type=float, default=30, help="seconds for each network step")
    find.add_argument(
        "--explain",
        action="store_true",
        help="no query: run this broker's matching on its database (--config) for --aet, and say why each "
        "step of the query's days is or is not answered",
    )
    find.add_argument("--config", help="with --explain: the broker's configuration")
    find.add_argument(
        "--replay",
        metavar="BUNDLE",
        help="send a worklist bundle's queries (exported from the worklist lab) to the SCP and compare "
        "each answer with the captured one",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, ProfileError, ScenarioError) as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
