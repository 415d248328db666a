"""The oracle service of ``leafnet search --distributed``: token-checked, optionally TLS,
and not held open by silent workers.

KerasTuner's chief serves its oracle over plain gRPC that takes any caller: a stranger who
reaches the port can create trials, report any score (and so become the best trial), or
keep the chief waiting forever. leafnet starts both sides, so:

- every call carries a shared token (``authorization: Bearer TOKEN`` metadata); the chief
  answers a call without it UNAUTHENTICATED before it reaches the oracle;
- with a certificate and key the chief serves TLS; workers given the CA verify it;
- a worker calls the chief every ``HEARTBEAT_S`` seconds while its trial runs; the chief
  ends the trial of a worker silent for ``worker_timeout`` seconds as failed and forgets
  the worker, so the search ends.

This replaces KerasTuner's ``oracle_chief.start_server`` and the channel of its
``OracleClient``, which are internals: setup.cfg bounds keras-tuner to the tested minor.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hmac
import ipaddress
import os
import secrets
import threading
import time
from pathlib import Path

from leafnet import console
from leafnet.errors import ConfigError, LeafnetError

TOKEN_ENV = "LEAFNET_ORACLE_TOKEN"
HEARTBEAT_S = 1.0
MIN_WORKER_TIMEOUT = 3.0
_KEY = "authorization"
_KT_VARS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@dataclasses.dataclass
class OracleLink:
    """One side of chief/worker mode: where the oracle is served and how calls are trusted."""

    role: str                  # "chief" or "worker"
    address: str
    port: int
    token: str
    worker_timeout: float
    cert: bytes | None = None  # chief: PEM certificate and private key (TLS)
    key: bytes | None = None
    ca: bytes | None = None    # worker: PEM certificate that signed the chief's
    token_generated: bool = False

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"

    def announce(self) -> str:
        return (f"oracle token: {self.token}  (start the workers with {TOKEN_ENV}=TOKEN "
                f"or --oracle-token TOKEN)")

    def serve(self, oracle, verbose: int = 0) -> None:
        """Serve ``oracle`` until every trial has ended and every worker was told to stop."""
        from concurrent import futures

        import grpc
        from keras_tuner.src import protos

        servicer = _watched_servicer(oracle, self.worker_timeout, verbose)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), interceptors=[_token_check(self.token)],
                             options=[("grpc.so_reuseport", 0)])   # a second chief on the port is refused
        protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
        try:
            if self.cert:
                server.add_secure_port(self.target, grpc.ssl_server_credentials([(self.key, self.cert)]))
            else:
                server.add_insecure_port(self.target)
        except RuntimeError:
            why = " or --oracle-cert/--oracle-key are not a PEM certificate and its key" if self.cert else ""
            raise LeafnetError(f"cannot serve the oracle at {self.target}: the port is in use or the address is "
                               f"not this machine's{why}") from None
        server.start()
        try:
            while not servicer.finished():
                time.sleep(0.2)
                servicer.drop_silent()
        finally:
            server.stop(grace=5).wait()

    def connect(self, client) -> None:
        """Point a KerasTuner ``OracleClient`` at the chief with the token (and TLS)."""
        import grpc
        from keras_tuner.src import protos

        if self.ca:
            channel = grpc.secure_channel(self.target, grpc.ssl_channel_credentials(root_certificates=self.ca))
        else:
            channel = grpc.insecure_channel(self.target)
        client.stub = protos.get_service_grpc().OracleStub(grpc.intercept_channel(channel, token_sender(self.token)))

    @contextlib.contextmanager
    def heartbeat(self, client, trial_id: str):
        """While the block runs, tell the chief every HEARTBEAT_S seconds that the trial lives."""
        import grpc
        from keras_tuner.src import protos

        stop = threading.Event()
        request = protos.get_service().GetTrialRequest(trial_id=trial_id)

        def beat():
            while not stop.wait(HEARTBEAT_S):
                try:
                    client.stub.GetTrial(request, timeout=5 * HEARTBEAT_S)
                except grpc.RpcError:
                    pass  # the trial's own report says what the chief answers

        thread = threading.Thread(target=beat, name=f"oracle-heartbeat-{trial_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    @contextlib.contextmanager
    def worker_errors(self):
        """A refused or failed call to the chief, as one line."""
        import grpc

        try:
            yield
        except grpc.RpcError as e:
            code = getattr(e.code(), "name", e.code()) if hasattr(e, "code") else "error"
            details = e.details() if hasattr(e, "details") else str(e)
            raise LeafnetError(f"the oracle at {self.target} answered {code}: {details}") from None


def configure(distributed: str | None, address: str | None, port: int | None, worker_id: str | None, *,
              token: str | None = None, cert: str | None = None, key: str | None = None, ca: str | None = None,
              worker_timeout: float = 600.0) -> OracleLink | None:
    """Check the chief/worker settings and set KerasTuner's environment variables for them."""
    for var in _KT_VARS:
        os.environ.pop(var, None)
    if not distributed:
        return None
    if distributed not in ("chief", "worker"):
        raise ConfigError(f"--distributed must be chief or worker; received {distributed!r}")
    if not address or not port:
        raise ConfigError("--distributed needs --oracle-address HOST and --oracle-port N (the chief's)")
    if isinstance(worker_timeout, bool) or not isinstance(worker_timeout, (int, float)) \
            or not worker_timeout >= MIN_WORKER_TIMEOUT:
        raise ConfigError(f"--worker-timeout must be a number of seconds >= {MIN_WORKER_TIMEOUT:g}; "
                          f"received {worker_timeout!r}")
    token = token or os.environ.get(TOKEN_ENV) or None
    generated = False
    if not token:
        if not is_loopback(address):
            raise ConfigError(f"--oracle-address {address} can be reached from other machines: give the chief and "
                              f"its workers the same --oracle-token TOKEN (or {TOKEN_ENV})")
        if distributed == "worker":
            raise ConfigError(f"a worker needs the chief's token: --oracle-token TOKEN or {TOKEN_ENV} "
                              f"(the chief prints the one it generates)")
        token, generated = secrets.token_urlsafe(32), True
    if distributed == "chief":
        if ca:
            raise ConfigError("--oracle-ca is a worker's flag; the chief takes --oracle-cert and --oracle-key")
        if bool(cert) != bool(key):
            raise ConfigError("--oracle-cert and --oracle-key go together (the chief's TLS certificate and its key)")
    elif cert or key:
        raise ConfigError("--oracle-cert and --oracle-key are the chief's; a worker takes --oracle-ca "
                          "(the certificate that signed the chief's)")
    link = OracleLink(distributed, address, int(port), token, float(worker_timeout),
                      cert=_read(cert, "--oracle-cert"), key=_read(key, "--oracle-key"), ca=_read(ca, "--oracle-ca"),
                      token_generated=generated)
    os.environ["KERASTUNER_ORACLE_IP"] = address
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)
    os.environ["KERASTUNER_TUNER_ID"] = "chief" if distributed == "chief" else (
        worker_id or f"worker-{os.uname().nodename}-{os.getpid()}")
    return link


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach ``address`` (a loopback IP or ``localhost``)."""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: other machines may resolve it


def _read(path: str | None, flag: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {flag} {path}: {e.strerror or e}") from None


def token_sender(token: str):
    """A client interceptor that adds the token to every call."""
    import grpc

    class Details(collections.namedtuple("Details", ("method", "timeout", "metadata", "credentials",
                                                     "wait_for_ready", "compression")), grpc.ClientCallDetails):
        pass

    class SendToken(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            metadata = [*(details.metadata or ()), (_KEY, f"Bearer {token}")]
            return continuation(Details(details.method, details.timeout, metadata, details.credentials,
                                        details.wait_for_ready, details.compression), request)

    return SendToken()


def _token_check(token: str):
    """A server interceptor that answers calls without the token UNAUTHENTICATED."""
    import grpc

    expected = f"Bearer {token}".encode()

    def refuse(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong oracle token")

    refusal = grpc.unary_unary_rpc_method_handler(refuse)

    class TokenCheck(grpc.ServerInterceptor):
        def intercept_service(self, continuation, details):
            sent = dict(details.invocation_metadata or ()).get(_KEY, "")
            if isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected):
                return continuation(details)
            return refusal

    return TokenCheck()


def _watched_servicer(oracle, timeout: float, verbose: int):
    import grpc
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine.trial import TrialStatus

    class WatchedServicer(OracleServicer):
        """KerasTuner's servicer that notes when each worker last called, ends the trials of
        workers silent for ``timeout`` seconds, and refuses their late reports."""

        def __init__(self):
            super().__init__(oracle)
            self.lock = threading.Lock()
            start = time.monotonic()
            self.seen = {tuner_id: start for tuner_id in oracle.ongoing_trials}  # a resumed search's
            self.ended: dict[str, str] = {}   # trial id -> why the chief ended it
            self.dropped: set[str] = set()

        def _saw(self, trial_id, context=None):
            if context is not None and trial_id in self.ended:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, self.ended[trial_id])
            for tuner_id, trial in self.oracle.ongoing_trials.items():
                if trial.trial_id == trial_id:
                    self.seen[tuner_id] = time.monotonic()

        def CreateTrial(self, request, context):
            with self.lock:
                self.seen[request.tuner_id] = time.monotonic()
                return super().CreateTrial(request, context)

        def UpdateTrial(self, request, context):
            with self.lock:
                self._saw(request.trial_id, context)
                return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            with self.lock:
                self._saw(request.trial.trial_id, context)
                return super().EndTrial(request, context)

        def GetTrial(self, request, context):
            with self.lock:
                self._saw(request.trial_id)
                return super().GetTrial(request, context)

        def finished(self) -> bool:
            """No trial runs and no worker waits; a worker was told to stop, or a dropped
            worker was the one that would have been."""
            with self.lock:
                o = self.oracle
                if o.ongoing_trials or o.tuner_ids:
                    return False
                return self.stop_triggered or bool(self.dropped and o.max_trials and len(o.trials) >= o.max_trials)

        def drop_silent(self) -> None:
            with self.lock:
                o, now = self.oracle, time.monotonic()
                for tuner_id in sorted(set(o.tuner_ids) | set(o.ongoing_trials)):
                    if now - self.seen.setdefault(tuner_id, now) < timeout:
                        continue
                    why = f"worker {tuner_id} sent nothing for {timeout:g} s; the chief ended its trial as failed"
                    o.tuner_ids.discard(tuner_id)
                    self.seen.pop(tuner_id, None)
                    self.dropped.add(tuner_id)
                    trial = o.ongoing_trials.get(tuner_id)
                    if trial is not None:
                        self.ended[trial.trial_id] = why
                        trial.status, trial.message = TrialStatus.FAILED, why
                        o.end_trial(trial)
                    if verbose:
                        console.info(why if trial is not None else f"worker {tuner_id} sent nothing for {timeout:g} s")

    return WatchedServicer()
