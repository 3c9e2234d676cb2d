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
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import uvicorn
from helpers import loaded_tensorflow, market_app_config, run_counting_imports
from PIL import Image
from starlette.testclient import TestClient

from pg2_tf import app as pg2_app
from pg2_tf.apps import generation, page_requests, page_routes, page_service
from pg2_tf.core import datasets, pose_files
from pg2_tf.core.errors import CheckpointError, ConfigError, DataError
from pg2_tf.networks import models
from pg2_tf.people import photos
from pg2_tf.serving import export_lib

RECORD = 3  # a fixture record (its source and target differ in pose)
WHOLE = 0  # a fixture record whose source shows both shoulders and both hips


def decode_data_url(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix), url[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :]))).convert("RGB"))


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def signatures(market_saved_model):
    """The SavedModel loaded on its own: the reference for every result."""
    return tf.saved_model.load(market_saved_model).signatures


def saved_model_outputs(signatures, image, keypoints_rc) -> dict:
    """What the SavedModel's from_keypoints gives for one image and pose (uint8 arrays)."""
    outputs = signatures["from_keypoints"](
        image=tf.constant(image[None]), keypoints=tf.constant(np.float32(keypoints_rc)[None])
    )
    return {name: value.numpy()[0] for name, value in outputs.items()}


@pytest.fixture(scope="module")
def application(market_saved_model, market_tf1_dir):
    config = market_app_config(market_saved_model, market_tf1_dir, max_upload_bytes=2**20)
    return page_routes.create_app(config)


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
    assert info["proportions"] is None  # the page chooses by where the pose comes from


def test_a_test_record_gives_its_images_and_the_pose_its_pose_map_was_drawn_from(
    client, signatures, reference_outputs
):
    # Reference: what the ORIGINAL code decoded from the fixture records and generated from them.
    record = client.get(f"/api/records/{RECORD}").json()
    x_uint8 = reference_outputs["x_uint8"][RECORD]
    np.testing.assert_array_equal(decode_data_url(record["source"]), x_uint8)
    np.testing.assert_array_equal(
        decode_data_url(record["target"]), reference_outputs["x_target_uint8"][RECORD]
    )

    answer = client.post(
        "/api/generate", json={"image": record["source"], "keypoints": record["target_keypoints"]}
    ).json()
    # The record's own pose map (not its keypoints) through serving_default gives the same.
    pose_target = reference_outputs["pose_target_01"][RECORD].astype(np.float32) * 2 - 1
    expected = signatures["serving_default"](
        image=tf.constant(x_uint8[None]), pose_target=tf.constant(pose_target[None])
    )
    for name in ("G1", "G2", "diff_map"):
        np.testing.assert_array_equal(decode_data_url(answer[name]), expected[name].numpy()[0])
    original_g2 = np.clip((reference_outputs["G2"][RECORD] + 1) * 127.5, 0, 255).astype(np.uint8)
    assert np.abs(decode_data_url(answer["G2"]).astype(int) - original_g2).max() <= 1


def test_pose_json_and_source_png_give_the_same_g2_through_pg2_generate(
    client, market_saved_model, tmp_path
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
    generation.generate(
        market_saved_model, tmp_path / "source.png", tmp_path / "pose.json", tmp_path / "g2.png",
        log=lambda line: None,
    )  # fmt: skip
    np.testing.assert_array_equal(
        decode_data_url(answer["G2"]), np.asarray(Image.open(tmp_path / "g2.png"))
    )
    triples = np.reshape(answer["openpose"]["people"][0]["pose_keypoints_2d"], (18, 3))
    np.testing.assert_array_equal(triples[17], [0, 0, 0])
    np.testing.assert_array_equal(triples[4], [keypoints[4, 1], keypoints[4, 0], 1])


def test_proportions_source_draws_the_target_pose_with_the_sources_bones(client, signatures):
    from pg2_tf.core import retarget

    record = client.get(f"/api/records/{WHOLE}").json()
    answer = client.post("/api/generate", json={
        "image": record["source"], "keypoints": record["target_keypoints"],
        "source_keypoints": record["source_keypoints"], "proportions": "source",
    }).json()  # fmt: skip
    drawn, _ = retarget.retarget_sequence(
        record["source_keypoints"], record["target_keypoints"], 128, 64
    )
    np.testing.assert_allclose(answer["keypoints"], drawn, atol=1e-4)
    expected = saved_model_outputs(signatures, decode_data_url(record["source"]), drawn)
    np.testing.assert_array_equal(decode_data_url(answer["G2"]), expected["G2"])


def test_the_sources_background_is_kept_outside_the_person(client, signatures, blazepose_estimator):
    from pg2_tf.apps import background

    record = client.get(f"/api/records/{WHOLE}").json()
    answer = client.post("/api/generate", json={
        "image": record["source"], "keypoints": record["target_keypoints"],
        "source_keypoints": record["source_keypoints"], "background": "source",
    }).json()  # fmt: skip
    image = decode_data_url(record["source"])
    kept = background.source_background(image, record["source_keypoints"], blazepose_estimator)
    alpha = background.paste_alpha(np.array(record["target_keypoints"]), 128, 64)
    g2 = saved_model_outputs(signatures, image, record["target_keypoints"])["G2"]
    out = decode_data_url(answer["G2"])
    np.testing.assert_array_equal(out[alpha == 0], kept.image[alpha == 0])
    np.testing.assert_array_equal(out[alpha == 1], g2[alpha == 1])
    for name in ("G1", "diff_map"):  # untouched
        np.testing.assert_array_equal(
            decode_data_url(answer[name]),
            saved_model_outputs(signatures, image, record["target_keypoints"])[name],
        )


def test_a_source_that_cannot_be_measured_or_emptied_is_answered_in_one_line(client):
    record = client.get(f"/api/records/{WHOLE}").json()
    no_hips = np.array(record["source_keypoints"])
    no_hips[[8, 11]] = -1
    grey = page_requests.png_data_url(np.full((128, 64, 3), 128, np.uint8))
    nobody = [[-1, -1]] * 18
    for image, source, option, message in [
        (record["source"], no_hips.tolist(), {"proportions": "source"},
         "the source person's shoulders and hips must be visible to keep their proportions"),
        (grey, nobody, {"background": "source"}, "no person found in the source to remove"),
        (record["source"], None, {"background": "source"}, "'source_keypoints' must be 18"),
        (record["source"], None, {"proportions": "own"}, "'proportions' must be"),
    ]:  # fmt: skip
        response = client.post("/api/generate", json={
            "image": image, "keypoints": record["target_keypoints"], "source_keypoints": source,
            **option,
        })  # fmt: skip
        assert response.status_code == 422
        assert response.json()["error"].startswith(message)
        assert "\n" not in response.json()["error"]


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


@pytest.mark.parametrize("index", ["24", "-1", "x", "\u00b2"])
def test_an_unknown_record_is_a_404_with_the_valid_range(client, index):
    response = client.get(f"/api/records/{index}")
    assert response.status_code == 404
    assert response.json()["error"] == (
        f"no test record {index}: there are 24 (0 to 23; pg2-app --data_dir offers them)"
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
        saved_model_outputs(signatures, decode_data_url(record["source"]), pose)["G2"]
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
    # The queue runs the waiting requests as one batch (Engine.batch_limit: 8 for TensorFlow), and
    # float32 sums in a batch may run in another order than for one request alone: on an AVX2-only
    # AMD EPYC one pixel moved by 1 grey level. The engine promises no more than that
    # (pg2_tf/serving/inference_queue.py; docs/performance.md, "Several users": batched answers
    # "within 1 grey level (max 1)"; max_batch=1 is bit for bit). The two poses' G2 differ by far
    # more (here 37 % of the values by over 1 grey level, up to 157), so each answer is still
    # shown to be its own pose's and not the other's.
    for job, answer in zip(jobs, answers, strict=True):
        g2 = decode_data_url(answer["G2"]).astype(np.int16)
        assert np.abs(g2 - expected[job]).max() <= 1
        assert (np.abs(g2 - expected[1 - job]) > 1).mean() > 0.1


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


def test_a_deepfashion_export_is_served_at_its_own_size(tmp_path):
    g1, g2, _ = models.build(
        datasets.DEEPFASHION.model, 256, 256, conv_hidden_num=4, z_num=8, d_dim=8
    )
    saved = export_lib.export_saved_model(g1, g2, tmp_path / "deepfashion", 256, 256)
    with TestClient(page_routes.create_app(page_service.AppConfig(saved_model=saved))) as df_client:
        info = df_client.get("/api/info").json()
        assert (info["img_H"], info["img_W"], info["dataset"]) == (256, 256, "deepfashion")
        image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
        source = "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()
        answer = df_client.post(
            "/api/generate", json={"image": source, "keypoints": info["default_pose"]}
        ).json()
    standing = np.array(info["default_pose"])
    assert standing.min() >= 0 and standing[:, 0].max() < 256 and standing[:, 1].max() < 256
    expected = saved_model_outputs(tf.saved_model.load(saved).signatures, image, standing)
    for name in ("G1", "G2", "diff_map"):
        np.testing.assert_array_equal(decode_data_url(answer[name]), expected[name])


# ---- photos ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    """A person (skimage's astronaut), a photo without one (coffee) and a text file, as uploads."""
    import skimage.data

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.jpg", quality=95)
    Image.fromarray(skimage.data.coffee()).save(folder / "coffee.jpg", quality=95)
    (folder / "notes.txt").write_text("not a photo\n")
    return folder


@pytest.fixture(scope="module")
def photo_application(market_saved_model, market_tf1_dir, blazepose_model_dir):
    """The app with the keypoint estimator (and the test records)."""
    config = market_app_config(
        market_saved_model, market_tf1_dir, keypoint_model_dir=blazepose_model_dir
    )
    return page_routes.create_app(config)


@pytest.fixture(scope="module")
def photo_client(photo_application):
    with TestClient(photo_application) as test_client:
        yield test_client


def upload(client, path, endpoint="/api/source"):
    return client.post(endpoint, content=path.read_bytes(), headers={"X-Filename": path.name})


def expected_crop(photo_path, model_dir):
    """The person of a photo in the 128x64 frame, straight from people.blazepose and photos."""
    from pg2_tf.people import blazepose, photos

    photo = photos.load_photo(photo_path)
    person = blazepose.KeypointEstimator(model_dir)(photo, name=photo_path.name)
    crop_image, crop = photos.person_crop(photo, person.box_xyxy, 128, 64)
    return crop_image, crop.to_crop_rc(person.keypoints_rc())


def test_a_photo_becomes_the_person_cropped_to_the_model_with_its_pose(
    photo_client, photo_files, blazepose_model_dir
):
    answer = upload(photo_client, photo_files / "astronaut.jpg").json()
    image, keypoints_rc = expected_crop(photo_files / "astronaut.jpg", blazepose_model_dir)
    np.testing.assert_array_equal(decode_data_url(answer["image"]), image)
    np.testing.assert_allclose(answer["keypoints"], keypoints_rc, atol=1e-4)
    assert answer["notice"] is None
    present = np.array(answer["keypoints"])[:, 0] >= 0
    assert present[[0, 1, 2, 5]].all()  # an upper-body photo: nose, neck and shoulders found


def test_a_second_photo_gives_the_target_pose(photo_client, photo_files, blazepose_model_dir):
    answer = upload(photo_client, photo_files / "astronaut.jpg", "/api/pose").json()
    _, keypoints_rc = expected_crop(photo_files / "astronaut.jpg", blazepose_model_dir)
    np.testing.assert_allclose(answer["keypoints"], keypoints_rc, atol=1e-4)


@pytest.mark.parametrize("endpoint", ["/api/source", "/api/pose"])
def test_a_file_that_is_not_an_image_is_refused_naming_it(photo_client, photo_files, endpoint):
    response = upload(photo_client, photo_files / "notes.txt", endpoint)
    assert response.status_code == 422
    assert "notes.txt" in response.json()["error"]


@pytest.mark.parametrize("endpoint", ["/api/source", "/api/pose"])
def test_a_photo_without_a_person_is_refused_naming_it(photo_client, photo_files, endpoint):
    response = upload(photo_client, photo_files / "coffee.jpg", endpoint)
    assert response.status_code == 422
    assert "no person found in coffee.jpg" in response.json()["error"]


def test_without_the_keypoint_model_a_photo_is_used_whole_and_the_page_says_how_to_get_it(
    market_saved_model, photo_files, tmp_path
):
    config = page_service.AppConfig(
        saved_model=market_saved_model, keypoint_model_dir=str(tmp_path)
    )
    with TestClient(page_routes.create_app(config)) as test_client:
        answer = upload(test_client, photo_files / "astronaut.jpg").json()
        refused = upload(test_client, photo_files / "astronaut.jpg", "/api/pose")
    assert "--fetch_model" in answer["notice"]
    photo = np.asarray(Image.open(photo_files / "astronaut.jpg"))
    whole, _, _ = photos.fit_to_model(photo, np.full((18, 2), -1.0), 128, 64)
    np.testing.assert_array_equal(decode_data_url(answer["image"]), whole)
    np.testing.assert_array_equal(answer["keypoints"], page_requests.standing_pose(128, 64))
    assert refused.status_code == 422 and "--fetch_model" in refused.json()["error"]


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
    assert config == page_service.AppConfig(
        saved_model="sm", data_dir="records", max_upload_bytes=int(2.5 * 2**20), precision="auto"
    )
    chosen = pg2_app.config_from_flags(parsed_flags("--saved_model=sm", "--proportions=source"))
    assert chosen.proportions == "source"


@pytest.mark.parametrize(
    "argv, message",
    [
        ((), "--saved_model is required (a folder written by pg2-export)"),
        (("--saved_model=sm", "--port=70000"), "--port=70000 must be between 0 and 65535"),
        (
            ("--saved_model=sm", "--max_upload_mb=0"),
            "--max_upload_mb=0.0 must be a positive number",
        ),
        (("--saved_model=sm", "--precision=half"), "--precision=half must be one of auto, float32"),
        (("--saved_model=sm", "--proportions=tall"), "--proportions=tall must be source or target"),
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
        page_routes.create_app(page_service.AppConfig(saved_model=str(tmp_path / "none")))
    assert "--saved_model" in str(error.value) and "pg2-export" in str(error.value)


def test_a_missing_saved_model_flag_is_refused_before_tensorflow_loads():
    result, imported = run_counting_imports("pg2_tf.app")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --saved_model is required (a folder written by pg2-export)"
    )
    assert "pg2_tf.serving.engines" in imported  # the app's own imports ran
    assert not loaded_tensorflow(imported)


def test_data_dir_without_test_records_is_refused_naming_the_flag(market_saved_model, tmp_path):
    with pytest.raises(DataError) as error:
        page_routes.create_app(
            page_service.AppConfig(saved_model=market_saved_model, data_dir=str(tmp_path))
        )
    assert str(error.value) == (
        f"--data_dir={tmp_path} holds no Market1501_test_*.tfrecord files (nor does its "
        "Market_test_data folder): point it at the converted test records, or leave it out"
    )


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# "ignored": as a shell script starts a job with "&", which Python then does not turn into
# KeyboardInterrupt; uvicorn's own handler still stops the server, which returns without raising.
@pytest.mark.parametrize("inherited_sigint", ["default", "ignored"])
def test_python_m_pg2_tf_app_serves_the_page_until_interrupted(
    market_saved_model, inherited_sigint
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "pg2_tf.app", f"--saved_model={market_saved_model}", f"--port={port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        preexec_fn=_ignore_sigint if inherited_sigint == "ignored" else None,
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
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # never leave the server running
            raise
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.endswith("pg2-app: stopped\n")


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
        "--disable-dev-shm-usage", "--window-size=1150,930",
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


def shown_result(driver, after=0) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Waits until the page shows the answer to its last change, a generation later than
    ``after``; returns (generation, source, keypoints, G2) as shown."""
    wait_for(
        driver,
        lambda d: d.execute_script(
            "return window.pg2.shown > arguments[0] && window.pg2.shown === window.pg2.sent",
            after,
        ),
        f"the page showed no result after generation {after}",
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
    browser, photo_application, photo_files, signatures, reference_outputs, tmp_path
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    with LiveServer(photo_application) as server:
        browser.get(server.url + "/")
        wait_for(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-ready"),
                 "the page did not start")  # fmt: skip
        assert "128x64" in browser.find_element("id", "model-info").text
        browser.find_element("id", "source-file").send_keys(str(photo_files / "astronaut.jpg"))
        generation, source, keypoints, g2_before = shown_result(browser)
        np.testing.assert_array_equal(
            g2_before, saved_model_outputs(signatures, source, keypoints)["G2"]
        )

        # Drag the first present arm joint 30 x 40 CSS pixels toward the middle of the frame.
        joint = next(j for j in (4, 3, 7, 6, 2, 5, 0) if keypoints[j, 0] >= 0)
        circle = browser.find_element("css selector", f"#skeleton circle[data-joint='{joint}']")
        scale = browser.find_element("id", "skeleton").size["height"] / 128  # CSS px per pixel
        dx, dy = 30 * np.sign(32 - keypoints[joint, 1]), 40 * np.sign(64 - keypoints[joint, 0])
        ActionChains(browser).click_and_hold(circle).move_by_offset(dx / 3, dy / 3).move_by_offset(
            dx * 2 / 3, dy * 2 / 3
        ).release().perform()
        new_generation, source_after, moved, g2_after = shown_result(browser, generation)

        np.testing.assert_array_equal(source_after, source)
        np.testing.assert_allclose(
            moved[joint] - keypoints[joint], [dy / scale, dx / scale], atol=1
        )
        others = np.arange(18) != joint
        np.testing.assert_array_equal(moved[others], keypoints[others])
        assert not np.array_equal(g2_after, g2_before)
        np.testing.assert_array_equal(
            g2_after, saved_model_outputs(signatures, source, moved)["G2"]
        )

        browser.find_element("id", "show-diff").click()
        screenshot = tmp_path / "app.png"
        browser.save_screenshot(str(screenshot))
        print(f"screenshot of the page: {screenshot}")
        if os.environ.get("PG2_APP_SCREENSHOT"):
            shutil.copy(screenshot, os.environ["PG2_APP_SCREENSHOT"])

        # The downloads: G2 as shown, the pose as OpenPose JSON of the pose shown.
        assert browser.find_element("id", "download-g2").get_attribute("href") == (
            browser.find_element("id", "g2").get_attribute("src")
        )
        document = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(document.getElementById('download-pose').href).then(r => r.json()).then(done);"
        )
        assert document == pose_files.openpose_document(pose_files.keypoints_to_triples(moved))

        # Double-clicking a joint removes it (and the result follows); ticking it puts it back.
        circle = browser.find_element("css selector", f"#skeleton circle[data-joint='{joint}']")
        ActionChains(browser).double_click(circle).perform()
        generation, _, removed, g2_removed = shown_result(browser, new_generation)
        np.testing.assert_array_equal(removed[joint], [-1, -1])
        np.testing.assert_array_equal(
            g2_removed, saved_model_outputs(signatures, source, removed)["G2"]
        )
        browser.find_element("id", f"joint-{joint}").click()
        generation, _, restored, _ = shown_result(browser, generation)
        np.testing.assert_array_equal(restored[joint], keypoints[joint])  # the source's own

        # A test record as source: its target pose, and its real target shown beside G2.
        Select(browser.find_element("id", "record")).select_by_value(str(RECORD))
        _, record_source, record_pose, record_g2 = shown_result(browser, generation)
        np.testing.assert_array_equal(record_source, reference_outputs["x_uint8"][RECORD])
        np.testing.assert_array_equal(
            record_g2, saved_model_outputs(signatures, record_source, record_pose)["G2"]
        )
        real_target = browser.find_element("id", "real-target")
        assert real_target.is_displayed()
        np.testing.assert_array_equal(
            decode_data_url(real_target.get_attribute("src")),
            reference_outputs["x_target_uint8"][RECORD],
        )

        # A bad upload: the server's message, on the page.
        browser.find_element("id", "source-file").send_keys(str(photo_files / "notes.txt"))
        message = browser.find_element("id", "message")
        wait_for(browser, lambda d: message.get_attribute("class") == "error", "no error shown")
        assert message.is_displayed() and "notes.txt" in message.text


def test_a_damaged_test_record_file_is_one_line_naming_it(market_tf1_dir, tmp_path):
    """A truncated record file given with --data_dir stops the app's start with one line."""
    source = market_tf1_dir / "test_data" / "Market1501_test_00000-of-00001.tfrecord"
    damaged = tmp_path / source.name
    damaged.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(DataError) as caught:
        page_service.load_test_pairs(str(tmp_path), "market", 128, 64, limit=1000)
    assert str(damaged) in str(caught.value)
    assert "\n" not in str(caught.value)


# ---- a photo of several people -----------------------------------------------------------------

TWO_MEN = "/usr/share/doc/labelme-examples/examples/bbox_detection/data_annotated/2011_000003.jpg"
needs_two_men = pytest.mark.skipif(
    not os.path.exists(TWO_MEN), reason="Debian's labelme-examples is not installed (the photo)"
)


def expected_person_crop(photo_path, model_dir, index):
    """Person ``index`` (largest first) of a photo in the 128x64 frame, from pg2_tf.people.finder."""
    from pg2_tf.people import blazepose, finder, photos

    photo = photos.load_photo(photo_path)
    found = finder.find_people(blazepose.KeypointEstimator(model_dir), photo)
    framed = photos.person_in_model_frame(photo, found[index], 128, 64)
    return found, framed.image, framed.keypoints_rc


@needs_two_men
@pytest.mark.parametrize("endpoint", ["/api/source", "/api/pose"])
def test_a_photo_of_two_people_asks_which_and_the_index_picks_one(
    photo_client, blazepose_model_dir, endpoint
):
    from pathlib import Path

    photo = Path(TWO_MEN)
    asked = upload(photo_client, photo, endpoint).json()
    found, image, keypoints_rc = expected_person_crop(photo, blazepose_model_dir, 1)

    assert [person["index"] for person in asked["people"]] == [0, 1]
    assert (asked["width"], asked["height"]) == (500, 338)
    for person, listed in zip(found, asked["people"], strict=True):
        x0, y0, x1, y1 = listed["box"]  # holds the person's joints
        xy = person.keypoints_xyc[person.keypoints_xyc[:, 2] > 0, :2]
        assert (xy >= [x0, y0]).all() and (xy <= [x1, y1]).all()
    chosen = photo_client.post(
        f"{endpoint}?person=1", content=photo.read_bytes(), headers={"X-Filename": photo.name}
    ).json()
    np.testing.assert_allclose(chosen["keypoints"], keypoints_rc, atol=1e-4)
    if endpoint == "/api/source":
        np.testing.assert_array_equal(decode_data_url(chosen["image"]), image)
    beyond = photo_client.post(
        f"{endpoint}?person=7", content=photo.read_bytes(), headers={"X-Filename": photo.name}
    )
    assert beyond.status_code == 422
    assert beyond.json()["error"] == (
        "person=7: only 2 people found in 2011_000003.jpg (indices 0 to 1, largest first)"
    )


@needs_two_men
def test_page_in_chromium_outlines_the_people_of_a_photo_and_a_click_picks_one(
    browser, photo_application, signatures, blazepose_model_dir
):
    with LiveServer(photo_application) as server:
        browser.get(server.url + "/")
        wait_for(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-ready"),
                 "the page did not start")  # fmt: skip
        browser.find_element("id", "source-file").send_keys(TWO_MEN)
        chooser = browser.find_element("id", "chooser")
        wait_for(browser, lambda d: chooser.is_displayed(), "the page did not ask which person")
        outlines = browser.find_elements("css selector", "#chooser-svg g.person")
        assert [outline.get_attribute("data-person") for outline in outlines] == ["0", "1"]
        assert "2 people in 2011_000003.jpg" in browser.find_element("id", "chooser-text").text
        # The outlines lie over the people: person 1 (the man on the left, smaller) left of 0.
        rects = [outline.find_element("tag name", "rect").rect for outline in outlines]
        assert rects[1]["x"] < rects[0]["x"] and all(r["width"] > 20 for r in rects)

        outlines[1].find_element("tag name", "rect").click()
        _, source, keypoints, g2 = shown_result(browser)

        assert not chooser.is_displayed()
        _, image, keypoints_rc = expected_person_crop(TWO_MEN, blazepose_model_dir, 1)
        np.testing.assert_array_equal(source, image)
        np.testing.assert_allclose(keypoints, keypoints_rc, atol=1e-4)
        np.testing.assert_array_equal(g2, saved_model_outputs(signatures, source, keypoints)["G2"])
