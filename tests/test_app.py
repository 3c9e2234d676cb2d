"""pg2-app: the web page's endpoints (Starlette test client and a live server) and the page itself
in headless Chromium (Selenium).

The SavedModel is exported from the ORIGINAL TF1 fixture checkpoint (Market 128x64,
conv_hidden_num 8); every result is compared with what that SavedModel's own signatures give.
"""

import base64
import concurrent.futures
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import uvicorn
from PIL import Image
from starlette.testclient import TestClient

from pg2_tf import app as pg2_app
from pg2_tf import data, export, generate
from pg2_tf.errors import CheckpointError, ConfigError, DataError

RECORD = 3  # a fixture record (its source and target differ in pose)


def decode_data_url(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix), url[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :]))).convert("RGB"))


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, market_tf1_dir):
    return export.export_from_checkpoint(
        market_tf1_dir / "tf1_checkpoint",
        tmp_path_factory.mktemp("app_export") / "market",
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=8,
        z_num=64,
    )


@pytest.fixture(scope="module")
def signatures(saved_model):
    """The SavedModel loaded on its own: the reference for every result."""
    return tf.saved_model.load(saved_model).signatures


def reference_outputs(signatures, image, keypoints_rc) -> dict:
    outputs = signatures["from_keypoints"](
        image=tf.constant(image[None]), keypoints=tf.constant(np.float32(keypoints_rc)[None])
    )
    return {name: value.numpy()[0] for name, value in outputs.items()}


@pytest.fixture(scope="module")
def application(saved_model, market_tf1_dir):
    config = pg2_app.AppConfig(
        saved_model=saved_model,
        data_dir=str(market_tf1_dir / "test_data"),
        max_upload_bytes=2**20,
    )
    return pg2_app.create_app(config)


@pytest.fixture(scope="module")
def client(application):
    with TestClient(application) as test_client:
        yield test_client


class LiveServer:
    """uvicorn serving an app in a thread of this process, on a free port of 127.0.0.1."""

    def __init__(self, app):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture(scope="module")
def live_server(application):
    with LiveServer(application) as server:
        yield server


def post_json(url, document) -> dict:
    request = urllib.request.Request(
        url, json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


# ---- endpoints ---------------------------------------------------------------------------------


def test_info_gives_the_exports_size_and_the_test_records(client):
    info = client.get("/api/info").json()
    assert (info["img_H"], info["img_W"], info["dataset"]) == (128, 64, "market")
    assert len(info["joint_names"]) == 18 and info["joint_names"][4] == "right_wrist"
    assert len(info["records"]) == 24
    assert info["records"][0]["name_0"].endswith(".jpg")


def test_a_test_record_gives_its_images_and_the_pose_its_pose_map_was_drawn_from(
    client, signatures, market_tf1_dir
):
    record = client.get(f"/api/records/{RECORD}").json()
    batch = next(
        iter(
            data.make_dataset(
                str(market_tf1_dir / "test_data"), "test", kind="market", img_H=128, img_W=64,
                batch_size=RECORD + 1, is_train=False,
            )
        )
    )  # fmt: skip
    x_uint8 = np.round(batch["x"][RECORD].numpy() * 127.5 + 127.5).astype(np.uint8)
    source = decode_data_url(record["source"])
    np.testing.assert_array_equal(source, x_uint8)

    answer = client.post(
        "/api/generate", json={"image": record["source"], "keypoints": record["target_keypoints"]}
    ).json()
    # Reference: the record's own pose map (not the keypoints) through serving_default.
    expected = signatures["serving_default"](
        image=tf.constant(x_uint8[None]), pose_target=batch["pose_target"][RECORD : RECORD + 1]
    )
    for name in ("G1", "G2", "diff_map"):
        np.testing.assert_array_equal(decode_data_url(answer[name]), expected[name].numpy()[0])


def test_pose_json_and_source_png_give_the_same_g2_through_pg2_generate(
    client, saved_model, tmp_path
):
    record = client.get(f"/api/records/{RECORD}").json()
    keypoints = np.array(record["target_keypoints"])
    keypoints[4] += (-12, 9)  # right wrist up and out
    keypoints[17] = -1
    answer = client.post(
        "/api/generate", json={"image": record["source"], "keypoints": keypoints.tolist()}
    ).json()
    (tmp_path / "pose.json").write_text(json.dumps(answer["openpose"]))
    Image.fromarray(decode_data_url(record["source"])).save(tmp_path / "source.png")
    generate.generate(
        saved_model, tmp_path / "source.png", tmp_path / "pose.json", tmp_path / "g2.png",
        log=lambda line: None,
    )  # fmt: skip
    np.testing.assert_array_equal(
        decode_data_url(answer["G2"]), np.asarray(Image.open(tmp_path / "g2.png"))
    )
    triples = np.reshape(answer["openpose"]["people"][0]["pose_keypoints_2d"], (18, 3))
    np.testing.assert_array_equal(triples[17], [0, 0, 0])
    np.testing.assert_array_equal(triples[4], [keypoints[4, 1], keypoints[4, 0], 1])


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "the request is not JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps({"image": "nope", "keypoints": []}).encode(), 422, "PNG data URL"),
        (
            json.dumps({"image": "data:image/png;base64,AAAA", "keypoints": []}).encode(),
            422,
            "is not a readable PNG",
        ),
    ],
)
def test_malformed_generate_requests_are_refused_with_a_message(client, body, status, message):
    response = client.post("/api/generate", content=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_source_of_another_size_or_a_bad_pose_is_refused_with_a_message(client):
    record = client.get(f"/api/records/{RECORD}").json()
    small = (
        "data:image/png;base64,"
        + base64.b64encode(png_bytes(np.zeros((64, 32, 3), np.uint8))).decode()
    )
    response = client.post("/api/generate", json={"image": small, "keypoints": [[-1, -1]] * 18})
    assert response.status_code == 422
    assert response.json()["error"] == (
        "'image' is 64x32 pixels, the model takes 128x64: upload the photo again"
    )
    for keypoints in ([[1, 2]] * 17, [[1, 2, 3]] * 18, [["a", "b"]] * 18, "x"):
        response = client.post(
            "/api/generate", json={"image": record["source"], "keypoints": keypoints}
        )
        assert response.status_code == 422
        assert response.json()["error"] == "'keypoints' must be 18 [row, col] pairs"


def test_an_unknown_record_is_a_404_with_the_valid_range(client):
    response = client.get("/api/records/24")
    assert response.status_code == 404
    assert response.json()["error"] == (
        "no test record 24: there are 24 (0 to 23; pg2-app --data_dir offers them)"
    )


def test_an_upload_over_the_limit_is_refused_before_it_is_read(client):
    # The fixture app's limit is 1 MB; the second request has no Content-Length (chunked).
    huge = b"\xff" * (2**20 + 1)
    for content in (huge, iter([huge[: 2**19], huge[2**19 :]])):
        response = client.post("/api/source", content=content, headers={"X-Filename": "big.jpg"})
        assert response.status_code == 413
        assert response.json()["error"] == (
            "the upload is larger than the limit of 1 MB: use a smaller file "
            "(pg2-app --max_upload_mb raises the limit)"
        )


def test_an_empty_upload_is_refused(client):
    response = client.post("/api/pose", content=b"")
    assert response.status_code == 400
    assert response.json()["error"] == "the request is empty: choose a file to upload"


def test_concurrent_requests_each_get_the_result_of_their_own_pose(live_server, signatures):
    record = post_json_get(live_server.url + f"/api/records/{RECORD}")
    poses = [np.array(record["target_keypoints"]), np.array(record["source_keypoints"])]
    expected = [
        reference_outputs(signatures, decode_data_url(record["source"]), pose)["G2"]
        for pose in poses
    ]
    assert not np.array_equal(expected[0], expected[1])
    jobs = [index % 2 for index in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda job: post_json(
                    live_server.url + "/api/generate",
                    {"image": record["source"], "keypoints": poses[job].tolist()},
                ),
                jobs,
            )
        )
    for job, answer in zip(jobs, answers, strict=True):
        np.testing.assert_array_equal(decode_data_url(answer["G2"]), expected[job])


def post_json_get(url) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def test_the_page_and_its_assets_are_served_from_this_server_only(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/app.css").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text


# ---- the command line --------------------------------------------------------------------------


def parsed_flags(*argv):
    from absl import flags

    flag_values = flags.FlagValues()
    pg2_app.define_flags(flag_values)
    flag_values(["pg2-app", *argv])
    return flag_values


def test_flags_become_the_apps_config():
    config = pg2_app.config_from_flags(
        parsed_flags("--saved_model=sm", "--data_dir=records", "--max_upload_mb=2.5")
    )
    assert config == pg2_app.AppConfig(
        saved_model="sm", data_dir="records", max_upload_bytes=int(2.5 * 2**20)
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        ((), "--saved_model is required (a folder written by pg2-export)"),
        (("--saved_model=sm", "--port=70000"), "--port=70000 must be between 0 and 65535"),
        (
            ("--saved_model=sm", "--max_upload_mb=0"),
            "--max_upload_mb=0.0 must be a positive number",
        ),
    ],
)
def test_bad_flags_are_one_line_naming_the_flag(argv, message):
    with pytest.raises(ConfigError) as error:
        pg2_app.config_from_flags(parsed_flags(*argv))
    assert str(error.value) == message


def test_a_port_in_use_is_refused_naming_the_flags():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as error:
            pg2_app.listening_socket("127.0.0.1", port)
    assert str(error.value).startswith(f"cannot listen on --host=127.0.0.1 --port={port} (")
    assert str(error.value).endswith(
        "): choose another --port, or a --host address of this machine"
    )


def test_a_missing_saved_model_is_refused_naming_the_flag(tmp_path):
    with pytest.raises(CheckpointError) as error:
        pg2_app.create_app(pg2_app.AppConfig(saved_model=str(tmp_path / "none")))
    assert "--saved_model" in str(error.value) and "pg2-export" in str(error.value)


def test_data_dir_without_test_records_is_refused_naming_the_flag(saved_model, tmp_path):
    with pytest.raises(DataError) as error:
        pg2_app.create_app(pg2_app.AppConfig(saved_model=saved_model, data_dir=str(tmp_path)))
    assert str(error.value) == (
        f"--data_dir={tmp_path} holds no Market1501_test_*.tfrecord files (nor does its "
        "Market_test_data folder): point it at the converted test records, or leave it out"
    )


def test_python_m_pg2_tf_app_serves_the_page_until_interrupted(saved_model):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "pg2_tf.app", f"--saved_model={saved_model}", f"--port={port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line == f"pg2-app: serving http://127.0.0.1:{port}/ (Ctrl-C stops it)\n", (
            line + process.stderr.read()[-3000:] if not line else line
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as response:
            assert b"/static/app.js" in response.read()
        info = post_json_get(f"http://127.0.0.1:{port}/api/info")
        assert (info["img_H"], info["img_W"], info["records"]) == (128, 64, [])
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]


# ---- the page in headless Chromium -------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's headless Chromium through Selenium (network features off: no network here)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} / {CHROMEDRIVER} missing in CI: .ci/run installs them")
        pytest.skip(f"no {CHROMIUM} / {CHROMEDRIVER}: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium_profile')}",
    ):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition, what, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d), message=what)


def shown_result(driver) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Waits until the page has answered its last change; (generation, source, keypoints, G2)."""
    wait_for(
        driver,
        lambda d: d.execute_script(
            "return window.pg2.sent > 0 && window.pg2.shown === window.pg2.sent"
        ),
        "the page never showed a result",
    )
    g2 = driver.find_element("id", "g2")
    source = driver.find_element("id", "source").get_attribute("src")
    return (
        int(g2.get_attribute("data-generation")),
        decode_data_url(source),
        np.array(json.loads(g2.get_attribute("data-keypoints"))),
        decode_data_url(g2.get_attribute("src")),
    )


def test_page_in_chromium_dragging_a_joint_updates_g2_to_the_saved_models_answer(
    browser, live_server, signatures, tmp_path
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    browser.get(live_server.url + "/")
    wait_for(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-ready"),
             "the page did not start")  # fmt: skip
    assert "128x64" in browser.find_element("id", "model-info").text
    Select(browser.find_element("id", "record")).select_by_value(str(RECORD))
    generation, source, keypoints, g2_before = shown_result(browser)
    np.testing.assert_array_equal(g2_before, reference_outputs(signatures, source, keypoints)["G2"])

    wrist = browser.find_element("css selector", "#skeleton circle[data-joint='4']")
    scale = browser.find_element("id", "skeleton").size["height"] / 128  # CSS px per model px
    ActionChains(browser).click_and_hold(wrist).move_by_offset(10, -10).move_by_offset(
        20, -30
    ).release().perform()
    new_generation, source_after, moved, g2_after = shown_result(browser)

    assert new_generation > generation
    np.testing.assert_array_equal(source_after, source)
    np.testing.assert_allclose(moved[4] - keypoints[4], [-40 / scale, 30 / scale], atol=1)
    np.testing.assert_array_equal(np.delete(moved, 4, axis=0), np.delete(keypoints, 4, axis=0))
    assert not np.array_equal(g2_after, g2_before)
    np.testing.assert_array_equal(g2_after, reference_outputs(signatures, source, moved)["G2"])

    browser.find_element("id", "show-diff").click()
    screenshot = tmp_path / "app.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot of the page: {screenshot}")
    if os.environ.get("PG2_APP_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["PG2_APP_SCREENSHOT"])
