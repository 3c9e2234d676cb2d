"""PG2 training: optimisers, the tf.function steps of both stages, and the loop around them."""

import keras

# tf.train.AdamOptimizer's defaults where the original relied on them (Keras' epsilon is 1e-7).
TF1_ADAM_EPSILON = 1e-8


def make_adam(learning_rate=2e-5, beta1=0.5, beta2=0.999):
    """An Adam configured like each of the original's three optimisers (lr 2e-5, beta1 0.5).

    Keras' update rule is TF1's (epsilon added to sqrt(v) with bias-corrected step size), so with
    epsilon 1e-8 it moves the weights as tf.train.AdamOptimizer did.
    """
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=beta1, beta_2=beta2, epsilon=TF1_ADAM_EPSILON
    )
