"""The composition root: builds every part from one BrokerConfig and starts/stops them.

The CLI (`broker serve`) and the tests start the broker the same way.
"""

from __future__ import annotations

import getpass
import logging
import ssl
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from pynetdicom import evt

from broker.actors.order_filler import OrderFiller
from broker.actors.pps_manager import PpsManager
from broker.actors.worklist_provider import CallerPolicy, WorklistProvider
from broker.audit.messages import AUDIT, AuditSource, DicomAuditMessages
from broker.audit.syslog import syslog_transport
from broker.audit.trail import OutboxAuditLog
from broker.config import BrokerConfig, DestinationConfig
from broker.dicom.ae import DicomListener
from broker.dicom.forwarder import DicomDestination, MppsTransport
from broker.dicom.mpps_scp import handle_n_create, handle_n_get, handle_n_set
from broker.dicom.mwl_scp import FindRequests, handle_find
from broker.domain.audit import Audited
from broker.domain.identifiers import AssignmentPolicy
from broker.domain.query_log import QueryLog
from broker.gate import FifoGate
from broker.hl7.assigned import AssignedNumbers
from broker.hl7.intake import Hl7Intake
from broker.hl7.listener import HandOff, MllpListener
from broker.hl7.processes import IntakeProcesses, intake_command
from broker.hl7.refusals import Hl7Refusals
from broker.hl7.sender import Destination, MllpTransport
from broker.hl7.senders import SenderPolicy
from broker.jobs.dead_letters import DeadLetters
from broker.jobs.housekeeping import Housekeeper
from broker.jobs.outbox_sender import Backoff, OutboxSender, Transport
from broker.jobs.scheduler import Jobs
from broker.mapping.hl7_out import Addressee, Hl7StatusNotifier
from broker.mapping.hl7_procedure import Hl7FillerOrderNotifier, Hl7ProcedureNotifier
from broker.mapping.mpps import MppsForwarding
from broker.mapping.profile import load_profile
from broker.metrics import Metrics
from broker.security import LoggedAlerts, SecurityAlerts
from broker.store.checkpoints import Checkpointer
from broker.store.db import build_engine
from broker.store.group_commit import GroupCommit
from broker.store.migrate import upgrade
from broker.store.outbox import SqlOutboxQueue
from broker.store.uow import SqlUnitOfWorkFactory
from broker.store.watch import StoreWatch
from broker.store.worklist import SqlWorklistReader
from broker.tls import optional_client_context

if TYPE_CHECKING:
    from broker.web.server import WebServer

log = logging.getLogger(__name__)

RIS = "ris"


class Services:
    """The broker without its network side: store, profile and the IHE actors. The
    CLI's maintenance commands (replay, ...) use this alone; `Broker` adds listeners."""

    def __init__(
        self, config: BrokerConfig, alerts: SecurityAlerts | None = None, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        #: This broker's own instruments and registry (never the process-wide default).
        self.metrics = metrics if metrics is not None else Metrics()
        self.profile = load_profile(config.profile)
        url = config.database.url
        upgrade(url)  # an existing database only: see broker.store.migrate
        #: The SQLite file as opened now, checked before every commit (store/watch.py).
        self.store = StoreWatch.of(url, lambda kind, peer, detail: self.alerts.refused(kind, peer, detail))
        self.engine = build_engine(url, sqlite_synchronous=config.database.sqlite_synchronous, watch=self.store)
        #: WAL checkpoints off the writers' path (SQLite), once `serve` is called.
        self.checkpoints = Checkpointer.of(self.engine)
        uow = SqlUnitOfWorkFactory(self.engine, self.store)
        trail = DicomAuditMessages(AuditSource.configured(config)) if config.audit.enabled else None
        self.audit = OutboxAuditLog(uow, trail, direct=syslog_transport(config.audit)) if trail else None
        #: Where every refused peer is reported: an ATNA Security Alert when auditing,
        #: else logged.
        self.alerts: SecurityAlerts = alerts or self.audit or LoggedAlerts()
        policy = AssignmentPolicy(
            uid_root=config.uid_root,
            accession_prefix=self.profile.assign.accession_prefix,
            requested_procedure_prefix=self.profile.assign.requested_procedure_prefix,
            sps_prefix=self.profile.assign.sps_prefix,
            station_by_modality=self.profile.assign.station_by_modality,
            station_by_procedure=self.profile.assign.station_by_procedure,
            own_application=self.profile.sending_application,
        )
        procedures = Hl7ProcedureNotifier(
            self.profile,
            [Addressee(im.name, im.receiving_application, im.receiving_facility) for im in config.image_managers],
        )
        #: HL7 messages of concurrent connections share a transaction (store/group_commit.py).
        together = GroupCommit(uow, committed=self.metrics.hl7_committed_together)
        #: RAD-3 for what is done at the broker itself, to the RIS when one is configured.
        filler_orders = Hl7FillerOrderNotifier(self.profile, [_ris_addressee(config)] if config.ris else [])
        self.order_filler = OrderFiller(
            uow,
            policy,
            procedures,
            Hl7Refusals(self.profile),
            audit=trail,
            transactions=together,
            filler_orders=filler_orders,
        )
        self.pps_manager = PpsManager(
            uow,
            Hl7StatusNotifier(self.profile, _ris_addressee(config)),
            MppsForwarding([scp.name for scp in config.mpps_forward]),
            link_by_accession=self.profile.mpps.link_by_accession,
            audit=trail,
        )
        callers = {ae: CallerPolicy(c.station_only, c.station_ae) for ae, c in config.dicom.callers.items()}
        #: The last worklist queries of each calling AE (the worklist lab shows them).
        self.queries = QueryLog()
        self.worklist = WorklistProvider(SqlWorklistReader(self.engine), config.dicom.max_worklist_matches, callers)
        #: C-FIND and the DICOMweb search take their turns in one line (broker/gate.py).
        self.worklist_turns = FifoGate(config.dicom.concurrent_queries)
        self.intake = Hl7Intake(
            self.order_filler, self.profile, SenderPolicy(config.hl7.allowed_senders), self.alerts, self.metrics
        )
        #: The operator's requeue and skip of dead letters (CLI and API), audited.
        self.dead_letters = DeadLetters(SqlOutboxQueue(self.engine), self.audit)

    def serve(self) -> None:
        """What a process serving for a while (not a CLI command) runs beside its work."""
        if self.checkpoints is not None:
            self.checkpoints.start()

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()  # what is queued reaches the outbox first
        if self.checkpoints is not None:
            self.checkpoints.stop()
        self.engine.dispose()


class Broker:
    """Every listener and job of one broker process, started and stopped together."""

    def __init__(self, config: BrokerConfig, alerts: SecurityAlerts | None = None) -> None:
        self.config = config
        self.services = services = Services(config, alerts)
        self.profile, self.engine = services.profile, services.engine
        self.order_filler, self.pps_manager = services.order_filler, services.pps_manager
        #: The intake processes serving HL7 connections, when `hl7.processes` > 1.
        self.intake_processes = _intake_processes(config, services.metrics)
        self.hl7 = hl7_listener(config, services, elsewhere=self.intake_processes)
        self.dicom = DicomListener(
            config.dicom,
            [
                (evt.EVT_C_ECHO, _echo, []),
                (
                    evt.EVT_C_FIND,
                    handle_find,
                    [
                        services.worklist,
                        FindRequests(self.profile),
                        services.metrics,
                        services.audit,
                        services.queries,
                        services.worklist_turns,
                    ],
                ),
                (
                    evt.EVT_N_CREATE,
                    handle_n_create,
                    [self.pps_manager, self.profile.mpps, config.uid_root, services.metrics],
                ),
                (evt.EVT_N_SET, handle_n_set, [self.pps_manager, self.profile.mpps, services.metrics]),
                (evt.EVT_N_GET, handle_n_get, [self.pps_manager]),
            ],
            services.alerts,
        )
        self.sender = OutboxSender(
            SqlOutboxQueue(self.engine),
            _transports(config),
            Backoff(config.outbox.retry_initial_seconds, config.outbox.retry_max_seconds),
            lease=_outbox_lease(config),
            replies={RIS: AssignedNumbers(self.order_filler, self.profile)},
        )
        self.housekeeper = Housekeeper(self.engine, config.housekeeping)
        self.jobs = Jobs(
            self.sender.rounds(), config.outbox.poll_seconds, self.housekeeper.run, config.housekeeping.interval_minutes
        )
        self.web = _web(config, services)

    def start(self) -> None:
        self.services.serve()
        if self.intake_processes is not None:
            self.intake_processes.start()
        self.hl7.start()
        self.dicom.start()
        self.jobs.start()
        if self.web is not None:
            self.web.start()
        if self.services.audit:
            self.services.audit.application(Audited.APPLICATION_START, _launcher())
        log.info(
            "broker started: HL7 on %s (served in %d process(es)), DICOM %s on %s, profile %s",
            self.hl7.port,
            self.config.hl7.processes,
            self.config.dicom.ae_title,
            self.dicom.port,
            self.profile.name,
        )

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        self.jobs.stop()
        self.dicom.stop()
        self.hl7.stop()
        if self.services.audit:
            self.services.audit.application(Audited.APPLICATION_STOP, _launcher())
            self.services.audit.flush()  # the last queries too
            self._last_drain()
        self.sender.close()
        self.services.close()
        log.info("broker stopped")

    def _last_drain(self) -> None:
        """Send the stop audit message (and what else is due) now; if it cannot go,
        it waits in the outbox for the next start."""
        try:
            self.sender.drain()
        except Exception:
            log.exception("last outbox drain failed")


def _nothing() -> None:
    return None


def hl7_listener(
    config: BrokerConfig, services: Services, *, elsewhere: HandOff | None = None, closed: Callable[[], None] = _nothing
) -> MllpListener:
    """The MLLP listener of the broker's process, or of an intake process (never
    started there: handed its connections, and telling each one's end)."""
    return MllpListener(
        config.hl7.host,
        config.hl7.port,
        services.intake.handle,
        max_frame_bytes=config.hl7.max_frame_bytes,
        idle_timeout=config.hl7.idle_timeout_seconds,
        max_connections=config.hl7.max_connections,
        tls=config.hl7.tls,
        alerts=services.alerts,
        elsewhere=elsewhere,
        closed=closed,
        busy_poll=config.hl7.busy_poll_ms / 1000,
    )


def _intake_processes(config: BrokerConfig, metrics: Metrics) -> IntakeProcesses | None:
    if config.hl7.processes == 1:
        return None
    return IntakeProcesses(config.hl7.processes, intake_command(), intake_setup(config), metrics)


def intake_setup(config: BrokerConfig) -> bytes:
    """The configuration an intake process is started with, as JSON (it is validated
    again there). The web section stays here: it holds the API tokens, which pydantic
    writes masked and an intake process has no use for."""
    return config.model_dump_json(exclude={"web"}).encode()


def _transports(config: BrokerConfig) -> dict[str, Transport]:
    """Each outbox destination's way out: MLLP to the RIS and Image Managers, DIMSE to
    the MPPS forwarding targets."""
    transports: dict[str, Transport] = {im.name: MllpTransport(_mllp(im)) for im in config.image_managers}
    for scp in config.mpps_forward:
        destination = DicomDestination(
            config.dicom.ae_title, scp.ae_title, scp.host, scp.port, scp.timeout_seconds, *_tls_to(scp)
        )
        transports[scp.name] = MppsTransport(destination)
    if config.ris:
        transports[RIS] = MllpTransport(_mllp(config.ris))
    if config.audit.enabled:
        transports[AUDIT] = syslog_transport(config.audit)
    return transports


def _ris_addressee(config: BrokerConfig) -> Addressee:
    ris = config.ris
    return Addressee(RIS, ris.receiving_application, ris.receiving_facility) if ris else Addressee(RIS)


def _mllp(destination: DestinationConfig) -> Destination:
    return Destination(destination.host, destination.port, destination.timeout_seconds, *_tls_to(destination))


def _tls_to(destination: DestinationConfig) -> tuple[ssl.SSLContext | None, str | None]:
    """The TLS context and expected server name of an outbound connection."""
    tls = destination.tls
    return optional_client_context(tls), tls.server_name if tls else None


def _web(config: BrokerConfig, services: Services) -> WebServer | None:
    """The REST API, page and /metrics, when `web.enabled`; outbox gauges read at scrape.
    Imported only then: the HTTP stack is most of a CLI command's start-up time."""
    if not config.web.enabled:
        return None
    from broker.web.context import WebContext
    from broker.web.server import WebServer

    outbox = SqlOutboxQueue(services.engine)
    services.metrics.watch_outbox(outbox.health)
    context = WebContext(
        services.engine,
        services.intake,
        services.pps_manager,
        outbox,
        services.dead_letters,
        services.metrics,
        services.worklist,
        services.profile,
        services.audit,
        config.dicom,
        services.queries,
        services.store,
        services.order_filler,
        services.worklist_turns,
    )
    return WebServer(config.web, context)


def _outbox_lease(config: BrokerConfig) -> timedelta:
    """Long enough for two sends to the slowest destination (connect + answer each)
    plus a margin: see OutboxSender."""
    timeouts = [d.timeout_seconds for d in (config.ris, *config.image_managers, *config.mpps_forward) if d]
    if config.audit.enabled:
        timeouts.append(config.audit.timeout_seconds)
    return timedelta(seconds=4 * max(timeouts, default=10) + 30)


def _echo(event: evt.Event) -> int:
    return 0x0000


def _launcher() -> str:
    """Who runs the broker process (Application Launcher of the start/stop audit)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
