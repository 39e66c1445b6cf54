# %% [markdown]
# # NN_comp_graph.py: the computation graph that Train_NN.py and Test_NN.py share
#
# From the lecture notes (seed 001, "Single Layer Neural Network for Digit Classification"):
# $y = \mathrm{softmax}(x W + b)$ with $W$ of shape 784x10 and $b$ of 10, trained by gradient
# descent on the cross entropy $-\sum y^{train} \log y$. The graph's inputs are the
# placeholders `x_train`, `y_train`; its outputs `train` and `accuracy`.
#
# Fill in every `___`. Keep the names: the training and test files import them.

# %%
import tensorflow as tf

x_train = tf.placeholder(tf.float32, [None, 784])  # BLANK: [None, 784]
y_train = tf.placeholder(tf.float32, [None, 10])  # BLANK: [None, 10]

w = tf.Variable(tf.zeros([784, 10]))  # BLANK: [784, 10]
b = tf.Variable(tf.zeros([10]))  # BLANK: [10]

m = tf.matmul(x_train, w)                # shape: [?,10]
z = m + b                                # shape: [?,10], broadcast
y = tf.nn.softmax(z)  # BLANK: z

cross_entropy = -tf.reduce_sum(y_train * tf.log(y))  # BLANK: y_train * tf.log(y)
train = tf.train.GradientDescentOptimizer(0.01).minimize(cross_entropy)

correct = tf.equal(tf.argmax(y, 1), tf.argmax(y_train, 1))
accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
