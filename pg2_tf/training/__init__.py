"""Training and test mode: the original's two jobs, as functions of plain config objects.

``loop.train(config)`` runs a training job: ``steps`` (the Trainer and its compiled steps),
``resume`` (where a run starts), ``run_folder`` (model_dir on disk), ``loss_check``,
``summaries``, ``precision`` (dtype policy, threads), ``distribution`` (tf.distribute).
``test_mode.write_test_results`` writes the original's test_result folders.

Rule: imports ``pg2_tf.core``, ``pg2_tf.records`` and ``pg2_tf.networks``; reads no flags.
"""
