"""The oracle of ``leafnet search --distributed`` on loopback, called as a stranger would (with
KerasTuner's own generated stub): no token, no trial; a silent worker does not hold the
chief; TLS; a reachable address without a token is refused."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import grpc
import pytest
import yaml
from keras_tuner.src import protos
from keras_tuner.src.engine.trial import Trial

from leafnet.runs import read_csv

pytestmark = pytest.mark.slow

TOKEN = "s3cret-test-token"
BEARER = [("authorization", f"Bearer {TOKEN}")]
KT_VARS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _search(leaves, root, port, *extra):
    space = root.parent / "space.yaml"
    space.write_text(yaml.safe_dump({"data.batch_size": [8, 16]}))
    return [sys.executable, "-m", "leafnet", "search", "--data", str(leaves), "--backbone", "simple-cnn",
            "--weights", "none", "--image-size", "32", "--epochs", "1", "--finetune-epochs", "0", "--seed", "5",
            "--tuner", "random", "--max-trials", "1", "--space", str(space), "--run-dir", str(root), "--quiet",
            "--oracle-address", "127.0.0.1", "--oracle-port", str(port), *extra]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "LEAFNET_ORACLE_TOKEN": TOKEN}


def _stub(chief, port, ca=None):
    """KerasTuner's stub on a plain (or TLS) channel, once the chief serves."""
    target = f"127.0.0.1:{port}"
    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca)) if ca else grpc.insecure_channel(target)
    deadline = time.time() + 240
    while True:
        assert chief.poll() is None, chief.communicate()[1][-3000:]
        try:
            grpc.channel_ready_future(channel).result(timeout=1)
            return protos.get_service_grpc().OracleStub(channel)
        except grpc.FutureTimeoutError:
            assert time.time() < deadline, "the chief did not serve"


def _chief(leaves, root, port, *extra):
    return subprocess.Popen(_search(leaves, root, port, "--distributed", "chief", *extra), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _refused(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        call(*args, timeout=30, **kwargs)
    return e.value.code()


def test_a_caller_without_the_token_changes_nothing_and_a_worker_with_it_runs(leaves, tmp_path, run_cli,
                                                                              monkeypatch):
    svc = protos.get_service()
    port, root = _port(), tmp_path / "s"
    chief = _chief(leaves, root, port)
    try:
        stub = _stub(chief, port)
        for metadata in ((), [("authorization", "Bearer wrong")]):   # the forged report of a perfect trial
            assert _refused(stub.CreateTrial, svc.CreateTrialRequest(tuner_id="intruder"),
                            metadata=metadata) == grpc.StatusCode.UNAUTHENTICATED
            assert _refused(stub.UpdateTrial, svc.UpdateTrialRequest(trial_id="0", metrics={"val_loss": 1e-9}),
                            metadata=metadata) == grpc.StatusCode.UNAUTHENTICATED
            assert _refused(stub.GetSpace, svc.GetSpaceRequest(), metadata=metadata) == grpc.StatusCode.UNAUTHENTICATED
        assert list(stub.GetBestTrials(svc.GetBestTrialsRequest(num_trials=1), metadata=BEARER, timeout=30).trials) == []
        assert not (root / "tuner" / "trial_0").exists()

        # a leafnet worker with a wrong token: one line, and the chief still has no trial
        for var in KT_VARS:
            monkeypatch.setenv(var, "")   # restored after the in-process worker set them
        monkeypatch.delenv("LEAFNET_ORACLE_TOKEN", raising=False)
        code, _, err = run_cli(*_search(leaves, root, port, "--distributed", "worker", "--oracle-token", "wrong")[3:])
        assert code == 2
        assert err.strip() == f"error: the oracle at 127.0.0.1:{port} answered UNAUTHENTICATED: missing or wrong " \
                              f"oracle token"
        assert not (root / "tuner" / "trial_0").exists()

        worker = subprocess.run(_search(leaves, root, port, "--distributed", "worker", "--worker-id", "w1"),
                                env=_env(), capture_output=True, text=True, timeout=400)
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert chief.wait(timeout=120) == 0, chief.stderr.read()[-3000:]
    finally:
        chief.kill()
    rows = read_csv(root / "trials.csv")
    assert [(r["trial"], r["status"]) for r in rows] == [("0", "COMPLETED")]
    assert float(rows[0]["val_loss"]) > 1e-3   # the worker's own result, not the forged one
    assert json.loads((root / "trials" / "0" / "search_trial.json").read_text())["tuner_id"] == "w1"


def test_a_silent_worker_is_dropped_and_the_chief_ends(leaves, tmp_path):
    svc = protos.get_service()
    port, root = _port(), tmp_path / "s"
    chief = _chief(leaves, root, port, "--worker-timeout", "3")
    try:
        stub = _stub(chief, port)
        trial = stub.CreateTrial(svc.CreateTrialRequest(tuner_id="ghost"), metadata=BEARER, timeout=30).trial
        assert Trial.from_proto(trial).status == "RUNNING"
        t0 = time.monotonic()
        code = chief.wait(timeout=90)    # today's KerasTuner chief waits for the ghost forever
        elapsed = time.monotonic() - t0
    finally:
        chief.kill()
    err = chief.stderr.read()
    assert code == 2 and "no trial completed (1 failed)" in err, err[-3000:]
    assert 2.5 <= elapsed < 3 + 40, elapsed
    rows = read_csv(root / "trials.csv")
    assert [(r["trial"], r["status"], r["reason"]) for r in rows] == [
        ("0", "FAILED", "worker ghost sent nothing for 3 s; the chief ended its trial as failed")]


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl makes the test's self-signed certificate")
def test_tls_chief_takes_only_tls_callers_with_the_token(leaves, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    svc = protos.get_service()
    port, root = _port(), tmp_path / "s"
    chief = _chief(leaves, root, port, "--oracle-cert", str(cert), "--oracle-key", str(key))
    try:
        stub = _stub(chief, port, ca=cert.read_bytes())
        plain = protos.get_service_grpc().OracleStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        assert _refused(plain.GetSpace, svc.GetSpaceRequest(), metadata=BEARER) == grpc.StatusCode.UNAVAILABLE
        assert _refused(stub.GetSpace, svc.GetSpaceRequest()) == grpc.StatusCode.UNAUTHENTICATED
        trial = Trial.from_proto(stub.CreateTrial(svc.CreateTrialRequest(tuner_id="t"), metadata=BEARER,
                                                  timeout=30).trial)
        trial.status, trial.message = "FAILED", "ended by the test"
        stub.EndTrial(svc.EndTrialRequest(trial=trial.to_proto()), metadata=BEARER, timeout=30)
        again = stub.CreateTrial(svc.CreateTrialRequest(tuner_id="t"), metadata=BEARER, timeout=30).trial
        assert Trial.from_proto(again).status == "STOPPED"
        assert chief.wait(timeout=90) == 2
    finally:
        chief.kill()
    assert [(r["trial"], r["status"]) for r in read_csv(root / "trials.csv")] == [("0", "FAILED")]


@pytest.mark.timeout(90)   # today's chief would serve a reachable address, and wait
def test_a_reachable_address_without_a_token_is_refused(leaves, tmp_path, run_cli, monkeypatch):
    monkeypatch.delenv("LEAFNET_ORACLE_TOKEN", raising=False)
    root = tmp_path / "s"
    args = _search(leaves, root, _port(), "--distributed", "chief")[3:]
    args[args.index("127.0.0.1")] = "0.0.0.0"
    code, _, err = run_cli(*args)
    assert code == 2 and err.strip() == ("error: --oracle-address 0.0.0.0 can be reached from other machines: give "
                                         "the chief and its workers the same --oracle-token TOKEN "
                                         "(or LEAFNET_ORACLE_TOKEN)")
    assert not root.exists()
    code, _, err = run_cli(*_search(leaves, root, _port(), "--distributed", "worker")[3:])
    assert code == 2 and "a worker needs the chief's token: --oracle-token TOKEN or LEAFNET_ORACLE_TOKEN" in err
    assert not root.exists()
