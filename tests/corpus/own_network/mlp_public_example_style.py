""" Multilayer Perceptron for the quadratic decision boundary.

Adapted from the TensorFlow-Examples multilayer_perceptron.py (Aymeric Damien), names
changed to the ones the assignment asks for.
"""

from __future__ import print_function

import numpy as np
import tensorflow as tf
from sklearn.preprocessing import OneHotEncoder

# Data (from the lecture)
m = 1000
x1 = 10*np.random.rand(m, 1) - 5
x2 = 8*np.random.rand(m, 1) - 4
g = - 0.5*(x1-1)**2 + 2*x2 + 5
C1 = np.where(g >= 0)[0]
C0 = np.where(g < 0)[0]
N = C1.shape[0]
M = C0.shape[0]
train_X = np.vstack([np.hstack([x1[C1], x2[C1]]), np.hstack([x1[C0], x2[C0]])])
train_y = np.vstack([np.ones([N, 1]), np.zeros([M, 1])])
train_y = OneHotEncoder(handle_unknown='ignore').fit_transform(train_y).toarray()

# Parameters
learning_rate = 0.01
training_epochs = 3000
display_step = 100

# Network Parameters
n_hidden = 2  # 1st layer number of neurons
n_input = 2   # data input (x1, x2)
n_output = 2  # total classes (C0, C1)

# tf Graph input
x = tf.placeholder("float", [None, n_input])
y = tf.placeholder("float", [None, n_output])

# Store layers weight & bias
weights = {
    'hidden': tf.Variable(tf.random_normal([n_input, n_hidden])),
    'output': tf.Variable(tf.random_normal([n_hidden, n_output]))
}
biases = {
    'hidden': tf.Variable(tf.random_normal([n_hidden])),
    'output': tf.Variable(tf.random_normal([n_output]))
}


# Create model
def multilayer_perceptron(x):
    # Hidden fully connected layer with sigmoid activation
    layer_1 = tf.nn.sigmoid(tf.add(tf.matmul(x, weights['hidden']), biases['hidden']))
    # Output fully connected layer with a neuron for each class
    out_layer = tf.matmul(layer_1, weights['output']) + biases['output']
    return out_layer

# Construct model
pred = multilayer_perceptron(x)

# Define loss and optimizer
loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
    logits=pred, labels=y))
optimizer = tf.train.AdamOptimizer(learning_rate=learning_rate)
optm = optimizer.minimize(loss)
# Initializing the variables
init = tf.global_variables_initializer()

loss_record = []
with tf.Session() as sess:
    sess.run(init)

    # Training cycle
    for epoch in range(training_epochs):
        _, c = sess.run([optm, loss], feed_dict={x: train_X, y: train_y})
        # Display logs per epoch step
        if epoch % display_step == 0:
            loss_record.append(c)
            print("Epoch:", '%04d' % (epoch+1), "cost={:.9f}".format(c))
    print("Optimization Finished!")

    # Test model
    correct_prediction = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
    # Calculate accuracy
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, "float"))
    print("Accuracy:", accuracy.eval({x: train_X, y: train_y}))
    w_hat = sess.run(weights)
    b_hat = sess.run(biases)
