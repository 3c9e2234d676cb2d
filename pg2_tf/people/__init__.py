"""People in photos and videos: BlazePose keypoints, every person in a scene, tracks over time.

Rule: imports ``pg2_tf.core`` and ``pg2_tf.records``; TensorFlow is never needed here.
"""
