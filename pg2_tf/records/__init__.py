"""Records: the original's tf-records and the annotation CSVs of later work, read.

Rule: imports only ``pg2_tf.core``; knows nothing of networks, training or command lines.
"""
