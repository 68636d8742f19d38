"""PyTriton round trips: `python -m rtgan.serve run` in its own environment (numpy < 2), queried with
rtgan.serve.Client from this one (numpy 2) over gRPC and HTTP, paints exactly what Engine.run paints
here; health and readiness answer; SIGTERM stops the server and its tritonserver child within seconds."""

import json
import platform
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from rtgan import Engine, weights
from rtgan.data import landscapes
from rtgan.errors import InputError
from rtgan.serve import Client, ServerUnavailable

pytest.importorskip("tritonclient.grpc", reason="tritonclient: pip install 'rtgan[serve]'")
ort = pytest.importorskip("onnxruntime")
THREADS = 2  # the server's and the reference's: same backend, same threads, same pixels
STOP_SECONDS = 15


@pytest.fixture(scope="module")
def serve_python():
    """The cached PyTriton environment's python (made on first use: about a minute, 450 MB)."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("nvidia-pytriton ships manylinux x86_64 wheels only")
    from rtgan.serve import pytriton_env

    try:
        return pytriton_env.ensure()
    except pytriton_env.EnvironmentUnavailable as e:
        pytest.skip(f"the PyTriton environment cannot be made here: {e}")


def _reference(name, labels, z=None):
    engine = Engine.load(weights.path(name) / "engine", backend="onnxruntime", threads=THREADS)
    return engine.run(labels, z=z)


def _health(server, path):
    with urllib.request.urlopen(f"http://{server.http_url}{path}", timeout=10) as r:
        return r.status


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ")[:200]
    except OSError:
        return None


def _stopped_cleanly(server):
    from rtgan.serve.testing import listening

    pids = server.tree()
    assert len(pids) >= 2, f"tritonserver should run as the server's child: {pids}"
    assert server.stop() == 0, server.tail()
    assert server.stop_seconds < STOP_SECONDS
    # the Python backend's helpers (multiprocessing's resource tracker and manager) close on their pipe's EOF
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = {p: _cmdline(p) for p in pids if _alive(p)}
    assert not alive, f"processes outlived the server by 5 s: {alive}"
    assert not any(listening(p) for p in (server.http_port, server.grpc_port, server.metrics_port))


def test_round_trip_is_bit_identical_to_the_engine(serve_python):
    from rtgan.serve.testing import ServerProcess

    labels = np.stack([landscapes.layout(seed, 256, 256) for seed in range(6)]).astype(np.int32)
    want = _reference("landscape-asapnet", labels)
    with ServerProcess(serve_python, "landscape-asapnet", backend="onnxruntime", threads=THREADS) as server:
        assert _health(server, "/v2/health/live") == 200 and _health(server, "/v2/health/ready") == 200
        assert _health(server, "/v2/models/landscape-asapnet/ready") == 200
        for protocol, url in (("grpc", server.grpc_url), ("http", server.http_url)):
            with Client(url, model="landscape-asapnet", protocol=protocol) as client:
                assert client.ready()
                assert client.inputs == {"labels": ("int32", [256, 256])} and client.max_batch_size == 4
                np.testing.assert_array_equal(client.paint(labels[0]), want[0])  # one map -> one image
                np.testing.assert_array_equal(client.paint(labels), want)  # 6 > max batch 4: sent as 4 + 2
                with pytest.raises(InputError, match="integer ids"):
                    client.paint(labels[0].astype(np.float32))
                with pytest.raises(InputError, match=r"\(256, 256\) per item"):
                    client.paint(labels[0, :100])
                # the server's Engine.run checks ids (PyTriton has no config parameters to tell the client)
                with pytest.raises(InputError, match="label id 3 is not one of this model's classes"):
                    client.paint(np.full((256, 256), 3, np.int32))
        with pytest.raises(ServerUnavailable, match="no such model"):
            Client(server.grpc_url, model="nope").paint(labels[0])
        _stopped_cleanly(server)
    client = Client(server.grpc_url, model="landscape-asapnet")
    assert not client.ready()
    with pytest.raises(ServerUnavailable):
        client.paint(labels[0])


def test_vae_model_with_an_explicit_z(serve_python):
    from rtgan.serve.testing import ServerProcess

    labels = np.stack([landscapes.layout(seed, 256, 256) for seed in (1, 2)]).astype(np.int32)
    z = np.random.default_rng(7).standard_normal((2, 64)).astype(np.float32)
    want = _reference("landscape-spade", labels, z)
    with ServerProcess(serve_python, "landscape-spade", backend="onnxruntime", threads=THREADS) as server:
        client = Client(server.grpc_url, model="landscape-spade", seed=3)
        assert client.inputs == {"labels": ("int32", [256, 256]), "z": ("float32", [64])}
        np.testing.assert_array_equal(client.paint(labels, z=z), want)
        np.testing.assert_array_equal(client.paint(labels[1], z=z[1]), want[1])
        # without z the client samples one, as Engine.run would: N(0, I) from its seed
        z0 = np.random.default_rng(3).standard_normal((1, 64)).astype(np.float32)
        np.testing.assert_array_equal(client.paint(labels[0]), _reference("landscape-spade", labels[:1], z0)[0])
        with pytest.raises(InputError, match="NaN"):
            client.paint(labels[0], z=np.full(64, np.nan, np.float32))
        _stopped_cleanly(server)


def test_numpy_2_is_refused_with_the_setup_command():
    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip("this environment has numpy < 2")
    r = subprocess.run([sys.executable, "-m", "rtgan.serve", "run", "landscape-asapnet"], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert "needs numpy < 2" in r.stderr and 'pip install -e ".[serve-pytriton]"' in r.stderr
    assert "Traceback" not in r.stderr


def test_a_server_that_is_down_is_a_typed_error():
    from rtgan.serve.testing import free_ports

    (port,) = free_ports(1)
    for protocol in ("grpc", "http"):
        client = Client(f"127.0.0.1:{port}", model="landscape-asapnet", protocol=protocol, timeout=5)
        assert not client.ready()
        with pytest.raises(ServerUnavailable, match="no ready server"):
            client.paint(np.zeros((256, 256), np.int32))
        with pytest.raises(ServerUnavailable, match="not ready after"):
            client.wait_ready(timeout=0.5)


def test_the_cached_environment_is_keyed_by_its_requirements(tmp_path, monkeypatch):
    from rtgan.serve import pytriton_env

    reqs = pytriton_env.requirements()
    assert "numpy<2" in reqs and any(r.startswith("nvidia-pytriton") for r in reqs)
    assert f"onnxruntime=={ort.__version__}" in reqs  # the server paints with the same kernels as this process
    assert pytriton_env.env_dir(reqs) != pytriton_env.env_dir(reqs + ["openvino"])
    assert json.dumps(pytriton_env.server_env()["PYTHONPATH"]).count(str(pytriton_env.ROOT)) == 1


def test_the_client_needs_no_torch():
    code = "import sys; from rtgan.serve import Client; Client('127.0.0.1:1', model='m'); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
