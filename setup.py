"""pg2_tf: Pose Guided Person Image Generation (PG2) on TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

# TensorFlow is chosen through an extra so that the CPU and CUDA wheels never land side by side
# (both install the same `tensorflow` package): `[cpu]` for tests/CI/laptops, `[gpu]` for CUDA.
TF_VERSION = "2.21.*"

setup(
    name="pg2_tf",
    version="0.1.0",
    description="TensorFlow 2 / Keras 3 port of Pose Guided Person Image Generation (PG2)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pg2_tf", "pg2_tf.*", "data_prep", "benchmarks"]),
    package_data={"pg2_tf.apps": ["static/*.html", "static/*.js", "static/*.css"]},
    install_requires=[
        "absl-py>=2.0",
        "numpy>=1.26",
        "pillow>=10.0",
        "scikit-image>=0.22",
        "matplotlib>=3.7",
        "tqdm>=4.66",
        "imageio>=2.31",  # pg2-animate: GIF/MP4 writing, video frames
        "imageio-ffmpeg>=0.5",  # ffmpeg for imageio (a binary inside the wheel, no download)
        "tensorboard>=2.16",  # tf.summary needs it; TF 2.21 no longer pulls it in
        # Runs the BlazePose models of pg2_tf.people.blazepose (tf.lite.Interpreter's successor);
        # where no wheel exists (Windows) it falls back to tf.lite.Interpreter.
        "ai-edge-litert>=2.3,<3; platform_system != 'Windows'",
        # pg2-app: the web page's server
        "starlette>=1.10",  # its test client uses httpx2 (the test extra)
        "uvicorn>=0.30",
        # pg2_tf.people: OpenCV's HOG people detector (its weights ship inside the wheel) finds
        # people BlazePose's face-led detector misses; HOG left the main package in OpenCV 5.
        "opencv-python-headless>=4.10,<5",
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TF_VERSION}"],
        "gpu": [f"tensorflow[and-cuda]=={TF_VERSION}"],
        "test": [
            f"tensorflow-cpu=={TF_VERSION}",
            "pytest>=8.0",
            "pytest-xdist>=3.6",  # the suite on every core (pyproject.toml's addopts)
            "ruff>=0.6",
            "httpx2",  # starlette.testclient
            "selenium>=4.20",  # pg2-app in headless Chromium (Debian's chromium + chromium-driver)
        ],
    },
    entry_points={
        "console_scripts": [
            "pg2-main=pg2_tf.main:run",
            "pg2-export=pg2_tf.export:run",
            "pg2-generate=pg2_tf.generate:run",
            "pg2-animate=pg2_tf.animate:run",
            "pg2-score=pg2_tf.score:run",
            "pg2-keypoints=pg2_tf.keypoints:run",
            "pg2-app=pg2_tf.app:run",
        ]
    },
)
