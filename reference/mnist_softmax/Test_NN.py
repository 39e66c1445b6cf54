# %% [markdown]
# # Test_NN.py: restore the trained network and measure its accuracy
#
# On-line use (seed 001): rebuild the same graph, restore the variables Train_NN.py saved,
# and measure the accuracy on the test images. Far below the training accuracy would mean
# overfitting.

# %%
import numpy as np
import tensorflow as tf
from NN_comp_graph import x_train, y_train, w, b, y, accuracy

(x_data, y_data), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
x_test = x_test.reshape(-1, 784) / 255.0
y_test = np.eye(10)[y_test]

sess = tf.Session()
tf.train.Saver().restore(sess, "./model/mnist_model.ckpt")  # BLANK: sess, "./model/mnist_model.ckpt"
print("test accuracy:", sess.run(accuracy, feed_dict={x_train: x_test, y_train: y_test}))
