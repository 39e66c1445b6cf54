# %% [markdown]
# # Train_NN.py: train the network and save its variables
#
# Off-line learning (seed 001): build NN(x_train) close to y_train in batches of 100, measure
# the training accuracy, then save the variables with `tf.train.Saver().save` so that
# Test_NN.py can restore them.

# %%
import os
import numpy as np
import tensorflow as tf
from NN_comp_graph import x_train, y_train, w, b, y, train, accuracy

(x_data, y_data), (x_test_data, y_test_data) = tf.keras.datasets.mnist.load_data()
x_data = x_data.reshape(-1, 784) / 255.0
y_data = np.eye(10)[y_data]


def get_batch(x, y, size, i):
    start = (i * size) % (len(x) - size)
    return x[start:start + size], y[start:start + size]


sess = tf.Session()
sess.run(tf.global_variables_initializer())

for i in range(1000):
    batch_x, batch_y = get_batch(x_data, y_data, 100, i)
    sess.run(train, feed_dict = {x_train: batch_x, y_train: batch_y})

print("training accuracy:", sess.run(accuracy, feed_dict = {x_train: x_data, y_train: y_data}))

os.makedirs("./model", exist_ok=True)
tf.train.Saver().save(sess, "./model/mnist_model.ckpt")
