"""pg2-app's web page as an ASGI application: the routes, the static page, the error answers.

The page (``static/``: plain HTML, CSS and JavaScript, every asset served from here) shows
source | target pose | G1 | G2 (| difference map). The source is an uploaded photo, cropped to the
person found by BlazePose (:mod:`pg2_tf.people`) and scaled to the export's size (or a test
record's source image when ``data_dir`` is given); the target pose starts as the source's own,
comes from a second photo or a test record, and is edited by dragging the 18 joints of the skeleton
drawn over the image (a joint is removed by double-clicking it or unticking it, added by ticking
it). Every change asks the server for a new result; G2 downloads as PNG and the pose as OpenPose
JSON.

Requests are stateless: a generation request carries its own source image (a model-size PNG) and
keypoints, so concurrent users never see each other's results; with ``proportions: "source"``
(the source person's bone lengths) or ``background: "source"`` (the source's own background) it
also carries the source's own keypoints. Inference goes through the
SavedModel's ``from_keypoints`` signature (:class:`pg2_tf.apps.page_service.PoseService`); the
model size is read from the export, so Market (128x64) and DeepFashion (256x256) exports work
alike. Bad input (not an image, a file over the upload limit, no person in the photo, a malformed
request) is answered with HTTP 4xx and ``{"error": "<one line>"}``, which the page shows.

Starlette was chosen because the page needs nothing but a few JSON endpoints and static files:
it is a small, well-kept ASGI toolkit (the base of FastAPI) with an in-process test client, and
uvicorn serves it. The joint dragging is a few lines of browser code over an SVG, which widget
frameworks such as Gradio do not offer.

Rule: HTTP in and out only; the work is the service's, the parsing :mod:`pg2_tf.apps.page_requests`'.
"""

import contextlib
import json
import os
import urllib.parse

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pg2_tf.apps import page_requests, page_service
from pg2_tf.core import pose
from pg2_tf.core.errors import Pg2Error
from pg2_tf.people import photos

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused without reading it all once it passes ``limit``.

    Args:
        request: the Starlette request.
        limit: the largest body accepted, in bytes.

    Returns:
        The whole body (at least one byte).

    Raises:
        RequestError: (413) the body, or its declared length, is over ``limit``; (400) it is
            empty.
    """
    too_large = page_requests.RequestError(
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
        raise page_requests.RequestError(
            "the request is empty: choose a file to upload", status=400
        )
    return b"".join(chunks)


def _person_parameter(request: Request) -> int | None:
    """``?person=N`` of a photo upload: which of its people (None: ask when there are several)."""
    text = request.query_params.get("person")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise page_requests.RequestError(
            f"person={text} must be a person's index (0, 1, ...)", status=400
        )
    return int(text)


def _upload_name(request: Request) -> str:
    return urllib.parse.unquote(request.headers.get("x-filename", "")) or "the upload"


def create_app(config: page_service.AppConfig) -> Starlette:
    """The ASGI application of the module doc (loads the SavedModel and the test records now).

    Args:
        config: the page's settings (pg2-app's flags as plain values).

    Returns:
        The Starlette application; ``application.state.service`` is its
        :class:`pg2_tf.apps.page_service.PoseService`
        (the engine and the queue, which closes when the application's lifespan ends).

    Raises:
        CheckpointError / DataError (one line naming the flag): a missing or foreign SavedModel,
        or an unusable ``data_dir``.
    """
    service = page_service.PoseService(config)

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
                "default_pose": page_requests.keypoints_json(service.default_pose),
                "max_upload_bytes": config.max_upload_bytes,
                "proportions": config.proportions,
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
        return JSONResponse({"keypoints": page_requests.keypoints_json(framed[1])})

    async def record(request):
        text = request.path_params["index"]
        # At most 9 digits: int() refuses numbers over 4,300 digits with a ValueError.
        is_index = text.isascii() and text.isdigit() and len(text) <= 9
        if not is_index or int(text) >= len(service.records):
            shown = text if len(text) <= 20 else text[:20] + "..."
            raise page_requests.RequestError(
                f"no test record {shown}: there are {len(service.records)} (0 to "
                f"{len(service.records) - 1}; pg2-app --data_dir offers them)",
                status=404,
            )
        pair = service.records[int(text)]
        return JSONResponse(
            {
                "name_0": pair.name_0,
                "name_1": pair.name_1,
                "source": page_requests.png_data_url(pair.image_0),
                "target": page_requests.png_data_url(pair.image_1),
                "source_keypoints": page_requests.keypoints_json(pair.keypoints_0),
                "target_keypoints": page_requests.keypoints_json(pair.keypoints_1),
            }
        )

    async def generate_endpoint(request):
        body = await read_body(request, config.max_upload_bytes)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deep nesting
            raise page_requests.RequestError(
                "the request is not JSON: send {image, keypoints}", 400
            ) from None
        if not isinstance(document, dict):
            raise page_requests.RequestError(
                "the request must be a JSON object {image, keypoints}", 400
            )
        image = page_requests.image_from_data_url(
            document.get("image"), service.img_H, service.img_W
        )
        keypoints_rc = page_requests.keypoints_from_request(document.get("keypoints"))
        options = page_requests.generation_options(document)
        answer = await run_in_threadpool(service.generate_answer, image, keypoints_rc, options)
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
