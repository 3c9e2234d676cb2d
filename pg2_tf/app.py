"""A local web page to pose a person interactively (``pg2-app``).

    python -m pg2_tf.app --saved_model=exported/market [--port=8080] [--host=127.0.0.1]
    python -m pg2_tf.app --saved_model=exported/market --data_dir=data/Market_test_data

The page (``app_static/``: plain HTML, CSS and JavaScript, every asset served from here) shows
source | target pose | G1 | G2 (| difference map). The source is an uploaded photo, cropped to the
person found by :mod:`pg2_tf.keypoints` and scaled to the export's size (or a test record's
source image when ``--data_dir`` is given); the target pose starts as the source's own, comes from
a second photo or a test record, and is edited by dragging the 18 joints of the skeleton drawn over
the image (a joint is removed by double-clicking it or unticking it, added by ticking it). Every
change asks the server for a new result; G2 downloads as PNG and the pose as OpenPose JSON.

Requests are stateless: a generation request carries its own source image (a model-size PNG) and
keypoints, so concurrent users never see each other's results. Inference goes through the
SavedModel's ``from_keypoints`` signature; the model size is read from the export, so Market
(128x64) and DeepFashion (256x256) exports work alike. Bad input (not an image, a file over the
upload limit, no person in the photo, a malformed request) is answered with HTTP 4xx and
``{"error": "<one line>"}``, which the page shows.

Starlette was chosen because the page needs nothing but a few JSON endpoints and static files:
it is a small, well-kept ASGI toolkit (the base of FastAPI) with an in-process test client, and
uvicorn serves it. The joint dragging is a few lines of browser code over an SVG, which widget
frameworks such as Gradio do not offer.
"""

import base64
import binascii
import contextlib
import dataclasses
import io
import json
import math
import os
import socket
import sys
import urllib.parse

import numpy as np
import uvicorn
from absl import flags
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pg2_tf import cli
from pg2_tf.core import datasets, pose
from pg2_tf.core.errors import ConfigError, DataError, Pg2Error
from pg2_tf.people import blazepose, finder, model_files, photos
from pg2_tf.serving import contract, engines

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app_static")
DEFAULT_MAX_UPLOAD_MB = 10
# OpenPose's COCO skeleton: the first 17 limbs of the body mask are exactly its drawn limbs.
# A standing person facing the camera in a 128x64 frame, (row, col), COCO-18 order: the pose a
# photo gets when no estimator is installed, and where a re-added joint appears.
_STANDING_128x64 = (
    (20, 32), (30, 32), (30, 22), (50, 20), (70, 18), (30, 42), (50, 44), (70, 46), (70, 26),
    (95, 26), (120, 26), (70, 38), (95, 38), (120, 38), (18, 30), (18, 34), (19, 28), (19, 36),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """What :func:`create_app` needs (the command line's flags, as plain values).

    saved_model: folder written by ``pg2-export``.
    data_dir: folder of test records (``<Market1501|DeepFashion>_test_*.tfrecord``), or its parent
        holding ``Market_test_data`` / ``DF_test_data``; None: no test records offered.
    max_upload_bytes: the largest photo or request body accepted (413 above).
    keypoint_model_dir: BlazePose model files (None: :func:`pg2_tf.people.model_files.blazepose_dir`'s default).
    max_records: how many test records are offered at most (the first ones, in file order).
    precision: ``--precision`` (:func:`pg2_tf.serving.engines.choose_precision`); the library default
        is the export's exact float32 path, the command line's is auto.
    max_batch: how many waiting requests the inference queue runs as one batch; None: what
        pays for the engine (:attr:`pg2_tf.serving.engines.Engine.batch_limit`: 8 for TensorFlow, 1
        for LiteRT); 1: one at a time, each answer then bit for bit the same whoever else is
        asking.
    """

    saved_model: str
    data_dir: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20
    keypoint_model_dir: str | None = None
    max_records: int = 200
    precision: str = "float32"
    max_batch: int | None = None


class RequestError(DataError):
    """Bad input in a request; ``status`` is the HTTP status it is answered with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


# ---- pictures and poses ------------------------------------------------------------------------


def png_data_url(image: np.ndarray) -> str:
    """uint8 [H, W] or [H, W, 3] -> ``data:image/png;base64,...`` (lossless)."""
    buffer = io.BytesIO()
    # zlib level 1: a 256x256 output in 7 ms against 52 ms at Pillow's default 6, for 18 % more
    # bytes, which a local page does not feel (3 images an answer: 135 ms of DeepFashion's ~1 s).
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_data_url(url, img_H: int, img_W: int) -> np.ndarray:
    """The model-size source image a request carries (a PNG data URL) -> uint8 [img_H, img_W, 3].

    Raises RequestError (422) when it is not a PNG data URL of exactly img_H x img_W pixels.
    """
    prefix = "data:image/png;base64,"
    if not isinstance(url, str) or not url.startswith(prefix):
        raise RequestError("'image' must be a PNG data URL (data:image/png;base64,...)")
    unreadable = RequestError("'image' is not a readable PNG: upload the photo again")
    try:
        png = base64.b64decode(url[len(prefix) :], validate=True)
        with Image.open(io.BytesIO(png)) as picture:
            if picture.format != "PNG":
                raise unreadable
            width, height = picture.size
            if (height, width) != (img_H, img_W):  # checked before decoding the pixels
                raise RequestError(
                    f"'image' is {height}x{width} pixels, the model takes {img_H}x{img_W}: "
                    "upload the photo again"
                )
            return np.asarray(picture.convert("RGB"))
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        raise unreadable from None


def keypoints_from_request(value) -> np.ndarray:
    """``keypoints``: 18 [row, col] pairs of numbers, [-1, -1] missing -> float32 [18, 2].

    Raises RequestError (422) for anything else.
    """

    def is_pair(item) -> bool:
        return (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item)
        )

    try:  # Python numbers only: not booleans, strings or nested lists
        pairs = isinstance(value, list) and len(value) == pose.NUM_KEYPOINTS
        keypoints = np.asarray(value, np.float64) if pairs and all(map(is_pair, value)) else None
    except OverflowError:  # an integer beyond float64
        keypoints = np.full((pose.NUM_KEYPOINTS, 2), np.inf)
    if keypoints is None:
        raise RequestError(f"'keypoints' must be {pose.NUM_KEYPOINTS} [row, col] pairs")
    if not np.all(np.isfinite(keypoints)):
        raise RequestError("'keypoints' must be finite numbers ([-1, -1] for a missing joint)")
    keypoints[pose.missing_joints(keypoints)] = pose.MISSING
    return keypoints.astype(np.float32)


def standing_pose(img_H: int, img_W: int) -> np.ndarray:
    """A standing person filling the height of an img_H x img_W frame: float32 [18, 2] (row, col)."""
    template = np.asarray(_STANDING_128x64, np.float64)
    scale = img_H / 128
    rows = template[:, 0] * scale
    cols = img_W / 2 + (template[:, 1] - 32) * scale
    return np.floor(np.stack([rows, cols], axis=1)).astype(np.float32)


def _keypoints_json(keypoints_rc) -> list:
    return [[float(row), float(col)] for row, col in np.asarray(keypoints_rc)]


# ---- test records ------------------------------------------------------------------------------


def find_test_records(data_dir: str, kind: str) -> tuple[str, list[str]]:
    """The test record files under data_dir, or under its ``Market_test_data`` / ``DF_test_data``.

    Returns ``(folder, files)``; raises DataError (naming ``--data_dir``) when there are none.
    """
    from pg2_tf.records import reader  # TensorFlow: only with --data_dir, so that --help needs none

    folder = datasets.by_kind(kind).data_folder("test")
    for candidate in (data_dir, os.path.join(data_dir, folder)):
        if os.path.isdir(candidate):
            try:
                return candidate, reader.record_files(candidate, "test", kind)
            except DataError:
                continue
    prefix = datasets.by_kind(kind).record_prefix
    raise DataError(
        f"--data_dir={data_dir} holds no {prefix}_test_*.tfrecord files (nor does its {folder} "
        "folder): point it at the converted test records, or leave it out"
    )


def load_test_pairs(data_dir: str, kind: str, img_H: int, img_W: int, limit: int) -> list:
    """The first ``limit`` test records of data_dir (:func:`pg2_tf.records.reader.read_record_pairs`).

    Raises DataError for missing files, records of another size, or records without keypoints.
    """
    from pg2_tf.records import reader

    _, files = find_test_records(data_dir, kind)
    return reader.read_record_pairs(files, img_H, img_W, limit)


# ---- the application ---------------------------------------------------------------------------


class PoseService:
    """The work behind the endpoints (no HTTP): the SavedModel, the estimator, the test records."""

    def __init__(self, config: AppConfig):
        self.config = config
        precision = engines.choose_precision(config.precision)  # a bad value fails first
        loaded, (self.img_H, self.img_W) = contract.load_export(config.saved_model)
        # One queue serves every user, in arrival order; it warms up now.
        self.engine = engines.Engine(config.saved_model, loaded, precision, warm_up=False)
        self.queue = engines.InferenceQueue(self.engine, max_batch=config.max_batch)
        self.model = contract.read_metadata(config.saved_model).get("model", datasets.MARKET.model)
        self.kind = datasets.by_model(self.model).kind
        self.records = []
        if config.data_dir:
            self.records = load_test_pairs(
                config.data_dir, self.kind, self.img_H, self.img_W, config.max_records
            )
        self.default_pose = standing_pose(self.img_H, self.img_W)
        self.warm_up_answers()

    # -- inference --

    def generate(self, image: np.ndarray, keypoints_rc: np.ndarray) -> dict:
        """uint8 [H, W, 3] + float32 [18, 2] -> {"G1", "G2", "diff_map"}: uint8 [H, W, 3] each."""
        return self.queue.submit(image, keypoints_rc).result()

    def generate_answer(self, image: np.ndarray, keypoints_rc: np.ndarray) -> dict:
        """/api/generate's answer: G1, G2 and diff_map as PNG data URLs, the keypoints [[row,
        col]] x 18 and the pose as an OpenPose document."""
        outputs = self.generate(image, keypoints_rc)
        answer = {name: png_data_url(picture) for name, picture in outputs.items()}
        answer["keypoints"] = _keypoints_json(keypoints_rc)
        answer["openpose"] = pose.openpose_document(pose.keypoints_to_triples(keypoints_rc))
        return answer

    def warm_up_answers(self) -> None:
        """One request's whole path (PNG in, the model, PNGs and JSON out) before the first user:
        the engine warmed up on the queue's thread still left the first request slower than the
        rest (PIL's codecs, the model's third call; docs/performance.md)."""
        grey = np.full((self.img_H, self.img_W, 3), 128, np.uint8)
        image = image_from_data_url(png_data_url(grey), self.img_H, self.img_W)
        json.dumps(self.generate_answer(image, self.default_pose))

    # -- photos --

    def person_in_frame(
        self, photo: np.ndarray, name: str, person: int | None = None
    ) -> tuple[np.ndarray, np.ndarray] | dict:
        """The photo's person cropped to the model's frame: (uint8 [H, W, 3], [18, 2] keypoints).

        ``person``: the index of the person (as :func:`pg2_tf.people.finder.find_people` lists them,
        largest first); None takes the only one, and for a photo of several people returns
        :func:`people_to_choose` instead (the page outlines them and asks for a click).
        Raises ModelFilesMissing (no BlazePose files), NoPersonFound naming the photo, and
        DataError (answered 422) for an index beyond the people found.
        """
        estimator = blazepose.cached_estimator(self.config.keypoint_model_dir)
        found = finder.find_people(estimator, photo, name)
        if person is None and len(found) > 1:
            return people_to_choose(photo, found)
        _, chosen = finder.choose_person(found, finder.PersonChoice("person", person), name)
        framed = photos.person_in_model_frame(photo, chosen, self.img_H, self.img_W)
        return framed.image, framed.keypoints_rc

    def source_from_photo(self, photo: np.ndarray, name: str, person: int | None = None) -> dict:
        """A source photo -> its model-size crop and pose (or, for several people and no
        ``person``, :func:`people_to_choose`); without the estimator's files, the whole photo
        scaled and padded, the standing pose, and a notice saying how to get them."""
        notice = None
        try:
            framed = self.person_in_frame(photo, name, person)
            if isinstance(framed, dict):
                return framed
            image, keypoints_rc = framed
        except model_files.ModelFilesMissing as error:
            missing = np.full((pose.NUM_KEYPOINTS, 2), pose.MISSING)
            image, _, _ = photos.fit_to_model(photo, missing, self.img_H, self.img_W)
            keypoints_rc = self.default_pose
            notice = f"{error}; meanwhile the whole photo is used and the pose starts standing"
        return {
            "image": png_data_url(image),
            "keypoints": _keypoints_json(keypoints_rc),
            "notice": notice,
        }


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (RequestError 413) past ``limit`` bytes without reading it all."""
    too_large = RequestError(
        f"the upload is larger than the limit of {limit / 2**20:g} MB: use a smaller file "
        "(pg2-app --max_upload_mb raises the limit)",
        status=413,
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    if not size:
        raise RequestError("the request is empty: choose a file to upload", status=400)
    return b"".join(chunks)


def _person_parameter(request: Request) -> int | None:
    """``?person=N`` of a photo upload: which of its people (None: ask when there are several)."""
    text = request.query_params.get("person")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise RequestError(f"person={text} must be a person's index (0, 1, ...)", status=400)
    return int(text)


# The photo sent back for choosing a person is at most this wide or high (the page shows it
# small; the outlines are in the photo's own pixels).
CHOOSER_SIZE = 800


def people_to_choose(photo: np.ndarray, found) -> dict:
    """What the page needs to let the user pick one of several people: ``{"people": [{"index",
    "box": [x0, y0, x1, y1]}], "photo": JPEG data URL, "width", "height"}``; boxes (the joints'
    box grown by a tenth, a fifth at the top) in the photo's pixels, people largest first as
    pg2-keypoints lists them."""
    height, width = photo.shape[:2]
    listed = []
    for index, person in enumerate(found):
        x0, y0, x1, y1 = finder.joints_box(person)
        grow_x, grow_y = 0.1 * (x1 - x0) + 2, 0.1 * (y1 - y0) + 2
        # The top joints are the eyes and ears: the head reaches higher.
        box = [max(0.0, x0 - grow_x), max(0.0, y0 - 2 * grow_y)]
        box += [min(float(width), x1 + grow_x), min(float(height), y1 + grow_y)]
        listed.append({"index": index, "box": [round(v, 1) for v in box]})
    picture = Image.fromarray(photo)
    picture.thumbnail((CHOOSER_SIZE, CHOOSER_SIZE))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "people": listed,
        "photo": f"data:image/jpeg;base64,{data}",
        "width": width,
        "height": height,
    }


def _upload_name(request: Request) -> str:
    return urllib.parse.unquote(request.headers.get("x-filename", "")) or "the upload"


def create_app(config: AppConfig) -> Starlette:
    """The ASGI application of the module doc (loads the SavedModel and the test records now).

    Raises CheckpointError / DataError (one line naming the flag) for a missing or foreign
    SavedModel or unusable ``data_dir``.
    """
    service = PoseService(config)

    async def index(request):
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def info(request):
        return JSONResponse(
            {
                "img_H": service.img_H,
                "img_W": service.img_W,
                "model": service.model,
                "dataset": service.kind,
                "joint_names": list(pose.KEYPOINT_NAMES),
                "limbs": [list(limb) for limb in pose.SKELETON_LIMBS],
                "default_pose": _keypoints_json(service.default_pose),
                "max_upload_bytes": config.max_upload_bytes,
                "records": [
                    {"index": index, "name_0": pair.name_0, "name_1": pair.name_1}
                    for index, pair in enumerate(service.records)
                ],
            }
        )

    async def source(request):
        body = await read_body(request, config.max_upload_bytes)
        name = _upload_name(request)
        person = _person_parameter(request)
        photo = await run_in_threadpool(photos.decode_photo, body, name)
        return JSONResponse(await run_in_threadpool(service.source_from_photo, photo, name, person))

    async def pose_from_photo(request):
        body = await read_body(request, config.max_upload_bytes)
        name = _upload_name(request)
        person = _person_parameter(request)
        photo = await run_in_threadpool(photos.decode_photo, body, name)
        framed = await run_in_threadpool(service.person_in_frame, photo, name, person)
        if isinstance(framed, dict):
            return JSONResponse(framed)
        return JSONResponse({"keypoints": _keypoints_json(framed[1])})

    async def record(request):
        text = request.path_params["index"]
        # At most 9 digits: int() refuses numbers over 4,300 digits with a ValueError.
        is_index = text.isascii() and text.isdigit() and len(text) <= 9
        if not is_index or int(text) >= len(service.records):
            shown = text if len(text) <= 20 else text[:20] + "..."
            raise RequestError(
                f"no test record {shown}: there are {len(service.records)} (0 to "
                f"{len(service.records) - 1}; pg2-app --data_dir offers them)",
                status=404,
            )
        pair = service.records[int(text)]
        return JSONResponse(
            {
                "name_0": pair.name_0,
                "name_1": pair.name_1,
                "source": png_data_url(pair.image_0),
                "target": png_data_url(pair.image_1),
                "source_keypoints": _keypoints_json(pair.keypoints_0),
                "target_keypoints": _keypoints_json(pair.keypoints_1),
            }
        )

    async def generate_endpoint(request):
        body = await read_body(request, config.max_upload_bytes)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deep nesting
            raise RequestError("the request is not JSON: send {image, keypoints}", 400) from None
        if not isinstance(document, dict):
            raise RequestError("the request must be a JSON object {image, keypoints}", 400)
        image = image_from_data_url(document.get("image"), service.img_H, service.img_W)
        keypoints_rc = keypoints_from_request(document.get("keypoints"))
        answer = await run_in_threadpool(service.generate_answer, image, keypoints_rc)
        return JSONResponse(answer)

    async def user_error(request, error: Pg2Error):
        status = getattr(error, "status", 422)
        return JSONResponse({"error": str(error)}, status_code=status)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/source", source, methods=["POST"]),
        Route("/api/pose", pose_from_photo, methods=["POST"]),
        Route("/api/records/{index}", record),
        Route("/api/generate", generate_endpoint, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.queue.close()

    application = Starlette(
        routes=routes, exception_handlers={Pg2Error: user_error}, lifespan=lifespan
    )
    application.state.service = service  # its engine and queue (pg2-app prints, benchmarks)
    return application


# ---- command line ------------------------------------------------------------------------------


def define_flags(flag_values=flags.FLAGS) -> None:
    """Defines the app's flags (skipping any already defined by another module)."""
    definitions = (
        (flags.DEFINE_string, "saved_model", None, "SavedModel folder written by pg2-export."),
        (flags.DEFINE_integer, "port", 8080, "TCP port to serve the page on."),
        (flags.DEFINE_string, "host", "127.0.0.1",
         "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)."),
        (flags.DEFINE_string, "data_dir", None,
         "Optional: folder of test records (or its parent) whose pairs the page offers."),
        (flags.DEFINE_float, "max_upload_mb", DEFAULT_MAX_UPLOAD_MB,
         "Largest photo accepted, in MB (2**20 bytes)."),
        (flags.DEFINE_string, "precision", "auto", engines.PRECISION_HELP),
        (flags.DEFINE_string, "keypoint_model_dir", None,
         "BlazePose model files (default: pg2_tf.keypoints' cache; python -m pg2_tf.keypoints "
         "--fetch_model gets them)."),
    )  # fmt: skip
    cli.define_missing_flags(definitions, flag_values)


def config_from_flags(flag_values=flags.FLAGS) -> AppConfig:
    """The :class:`AppConfig` of parsed flags; ConfigError naming the flag for a bad value."""
    if not flag_values.saved_model:
        raise ConfigError("--saved_model is required (a folder written by pg2-export)")
    if not 0 <= flag_values.port < 65536:
        raise ConfigError(f"--port={flag_values.port} must be between 0 and 65535")
    if not (math.isfinite(flag_values.max_upload_mb) and flag_values.max_upload_mb > 0):
        raise ConfigError(f"--max_upload_mb={flag_values.max_upload_mb} must be a positive number")
    engines.check_precision(flag_values.precision)
    return AppConfig(
        saved_model=flag_values.saved_model,
        data_dir=flag_values.data_dir,
        max_upload_bytes=int(flag_values.max_upload_mb * 2**20),
        keypoint_model_dir=flag_values.keypoint_model_dir,
        precision=flag_values.precision,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: any free one); ConfigError naming the flags."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait from now on, until the server accepts them
    except OSError as error:
        sock.close()
        raise ConfigError(
            f"cannot listen on --host={host} --port={port} ({error.strerror or error}): choose "
            "another --port, or a --host address of this machine"
        ) from None
    return sock


def main(argv) -> None:
    """Serves the page from the command-line flags until Ctrl-C."""
    cli.start_command(argv)
    flag_values = flags.FLAGS
    config = config_from_flags(flag_values)
    app = create_app(config)
    sock = listening_socket(flag_values.host, flag_values.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    print(f"pg2-app: serving http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    # On stderr, with uvicorn's own log lines: stdout says only where the page is.
    service = app.state.service
    described = engines.describe(service.engine)
    if service.queue.side_by_side:
        described += "; under load two requests side by side, each on half of the cores"
    print(f"pg2-app: {described}", file=sys.stderr, flush=True)
    try:
        with sock:
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes Ctrl-C on
        pass
    # Also when uvicorn returns without passing it on: a SIGINT this process inherited as
    # ignored (a shell script's "&" job) raises no KeyboardInterrupt.
    print("pg2-app: stopped", flush=True)


def run() -> None:
    """Console entry point ``pg2-app``."""
    cli.console_entry(define_flags, main)


if __name__ == "__main__":
    run()
