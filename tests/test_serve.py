"""fastleaf serve as a real process on a free loopback port: the JSON API answers a photo as
predict does, refuses each kind of bad upload in one line and stays up, and 50 concurrent
requests all get their own correct answer."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastleaf.data.table import load_table
from fastleaf.export.exporter import export_run
from fastleaf.export.model_info import ExportSettings

from test_export import write_run

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
MAX_PIXELS = 4_000_000          # the server's pixel limit in these tests (FASTLEAF_MAX_PIXELS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, data: bytes | None = None, timeout: float = 60) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Server:
    def __init__(self, model: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FASTLEAF_MAX_PIXELS": str(MAX_PIXELS)}
        self.proc = subprocess.Popen([sys.executable, "-m", "fastleaf", "serve", "--model",
                                      str(model), "--port", str(self.port), *extra],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(240):                     # up to two minutes on a loaded machine
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()}")
            try:
                if request(self.url + "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("server did not answer /health")

    def alive(self) -> bool:
        return self.proc.poll() is None and request(self.url + "/health")[0] == 200

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def served(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    run = write_run(folder / "run", tiny_data, "cnn")
    export_run(run, folder / "cnn.onnx", ExportSettings(check=0))
    server = Server(folder / "cnn.onnx", "--max-upload-mb", "1")
    yield server, run, folder / "cnn.onnx"
    server.stop()


def photos(tiny_data, n=5) -> list[Path]:
    return list(load_table(tiny_data).val.paths[:n])


def test_health_and_classes(served, tiny_data):
    server, _, _ = served
    status, health = request(server.url + "/health")
    assert status == 200 and health == {"status": "ok", "model": "cnn", "classes": 6}
    assert request(server.url + "/classes")[1]["classes"] == load_table(tiny_data).classes


def test_a_photo_gets_the_top5_that_predict_gives(served, tiny_data):
    from fastleaf.export.onnx_runtime import predict_photos_onnx

    server, _, model = served
    photo = photos(tiny_data)[0]
    status, answer = request(server.url + "/predict", photo.read_bytes())
    assert status == 200 and answer["model"] == "cnn"
    expected = predict_photos_onnx(photo, model, top=5).top[0]
    assert [t["species"] for t in answer["top"]] == [s for s, _ in expected]
    np.testing.assert_allclose([t["probability"] for t in answer["top"]],
                               [p for _, p in expected], atol=1e-6)


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def bad_uploads(photo: Path) -> dict[str, tuple[bytes, int, str]]:
    jpeg = photo.read_bytes()
    return {
        "not an image": (b"name,label\nleaf.jpg,acer\n", 400, "not a readable image"),
        "truncated": (jpeg[: len(jpeg) // 2], 400, "not a readable image"),
        # 9 megapixels of one grey: a few kB of PNG that would decode to 9 MB
        "decompression bomb": (png_bytes(3000, 3000), 413, "above the limit"),
        "over the size limit": (os.urandom(1024 * 1024 + 1), 413, "above the limit of"),
        "empty": (b"", 400, "empty upload"),
    }


@pytest.mark.parametrize("kind", ["not an image", "truncated", "decompression bomb",
                                  "over the size limit", "empty"])
def test_a_bad_upload_is_a_4xx_with_one_line_and_the_server_stays_up(served, tiny_data, kind):
    server, _, _ = served
    body, expected_status, reason = bad_uploads(photos(tiny_data)[0])[kind]
    assert len(png_bytes(3000, 3000)) < 100_000
    status, answer = request(server.url + "/predict", body)
    assert status == expected_status, answer
    assert reason in answer["error"] and "\n" not in answer["error"]
    assert server.alive()
    assert request(server.url + "/predict", photos(tiny_data)[0].read_bytes())[0] == 200


def test_a_huge_declared_upload_is_refused_before_a_byte_is_read(served):
    import http.client

    server, _, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Length", str(10 ** 11))      # 100 GB announced, nothing sent
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and "above the limit" in json.loads(response.read())["error"]
    conn.close()
    assert server.alive()


def test_50_concurrent_requests_each_get_their_own_answer(served, tiny_data):
    server, _, _ = served
    files = photos(tiny_data, 5)
    expected = [request(server.url + "/predict", f.read_bytes())[1]["top"] for f in files]
    bad = bad_uploads(files[0])["not an image"][0]

    def one(i: int):
        # every tenth request is a bad upload, mixed in with the good ones
        if i % 10 == 9:
            return i, request(server.url + "/predict", bad, timeout=120)
        return i, request(server.url + "/predict", files[i % 5].read_bytes(), timeout=120)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    for i, (status, answer) in answers:
        if i % 10 == 9:
            assert status == 400
        else:
            assert status == 200 and answer["top"] == expected[i % 5], i
    assert server.alive()


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux's /proc/net/tcp")
def test_it_listens_on_loopback_only_by_default(served):
    server, _, _ = served
    listening = [line.split()[1] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[3] == "0A"]                        # 0A: LISTEN
    mine = [addr for addr in listening if int(addr.split(":")[1], 16) == server.port]
    assert mine == ["0100007F:%04X" % server.port]                 # 127.0.0.1


def test_a_run_and_its_export_give_the_same_answer(served, tiny_data):
    from fastleaf.serve.predictor import classify, load_predictor

    _, run, model = served
    data = photos(tiny_data)[2].read_bytes()
    torch_top = classify(load_predictor(run), data)
    onnx_top = classify(load_predictor(model), data)
    assert [s for s, _ in torch_top] == [s for s, _ in onnx_top]
    np.testing.assert_allclose([p for _, p in torch_top], [p for _, p in onnx_top], atol=1e-5)
