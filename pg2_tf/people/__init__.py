"""People in photos and videos: BlazePose keypoints, every person in a scene, tracks over time.

From the bottom up: ``model_files`` (fetching and checking BlazePose's two files), ``geometry`` and
``decoding`` (MediaPipe's warps and output decoding), ``blazepose`` (the engine: one photo's main
person), ``bodies`` (OpenCV's HOG people detector) and ``regions`` (people read without the face
detector: crops, body boxes, the last frame), ``finder`` (every person of a photo, and choosing
one), ``tracks`` and ``following`` (people through frames), ``drawing`` (skeletons on a photo) and
``photos`` (users' photo files, crops).

Rule: imports ``pg2_tf.core`` and ``pg2_tf.records``; TensorFlow is never needed here (OpenCV
only for HOG).
"""
