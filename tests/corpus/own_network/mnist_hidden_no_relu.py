# %% [markdown]
# # An artificial neural network on MNIST
#
# From the lecture notes (seed 000, section 4, and seed 004, "ANN with TensorFlow"): classify
# 28x28 handwritten digits with one hidden layer of ReLU nodes, trained with Adam on
# mini-batches, recording the training and test loss as it goes.
#
# The data come with the course's offline copy of MNIST through TensorFlow 1's tutorial module,
# exactly as the notes load it. Fill in every `___`. Keep the names `x`, `y`, `weights`,
# `biases`, `build_model`, `pred`, `loss`, `optm`, `sess`, `loss_record_train`,
# `loss_record_test`: the grader reads them.

# %%
# Import Library
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf

# %%
from tensorflow.examples.tutorials.mnist import input_data
mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)

print ("The training data set is:\n")
print (mnist.train.images.shape)
print (mnist.train.labels.shape)
print ("The test data set is:")
print (mnist.test.images.shape)
print (mnist.test.labels.shape)

# %% [markdown]
# ## Define an ANN shape, weights, biases and placeholders
# 784 inputs (a flattened image), 100 hidden nodes, 10 outputs (one per digit).
# Initialize with a normal distribution, $\mu = 0$ and $\sigma = 0.1$.

# %%
n_input = 784
n_hidden = 100
n_output = 10

weights = {
    'hidden' : tf.Variable(tf.random_normal([n_input, n_hidden], stddev = 0.1)),
    'output' : tf.Variable(tf.random_normal([n_hidden, n_output], stddev = 0.1))
}

biases = {
    'hidden' : tf.Variable(tf.random_normal([n_hidden], stddev = 0.1)),
    'output' : tf.Variable(tf.random_normal([n_output], stddev = 0.1))
}

x = tf.placeholder(tf.float32, [None, n_input])
y = tf.placeholder(tf.float32, [None, n_output])

# %% [markdown]
# ## Build the model
# First the layer computes linear activations, then a nonlinear activation function (ReLU),
# then the output layer's affine transformation.

# %%
# Define Network
def build_model(x, weights, biases):
    # first hidden layer
    hidden = tf.add(tf.matmul(x, weights['hidden']), biases['hidden'])
    # non-linear activate function
    # Output layer
    output = tf.add(tf.matmul(hidden, weights['output']), biases['output'])
    return output

# Define Loss
pred = build_model(x, weights, biases)
loss = tf.nn.softmax_cross_entropy_with_logits(logits = pred, labels = y)
loss = tf.reduce_mean(loss)

LR = 0.0001
optm = tf.train.AdamOptimizer(LR).minimize(loss)

# %% [markdown]
# ## Optimization
# `n_batch`: batch size for mini-batch gradient descent; `n_iter`: the number of iteration
# steps; `n_prt`: check the loss every `n_prt` iterations. Open a session, define the
# initializer and run it.

# %%
n_batch = 50     # Batch Size
n_iter = 3000    # Learning Iteration
n_prt = 250      # Print Cycle

# open session
# define init
# run init
sess = tf.Session()
init = tf.global_variables_initializer()
sess.run(init)

# c1 is for train
# c2 is for test
loss_record_train = []
loss_record_test = []
for epoch in range(n_iter):
    train_x, train_y = mnist.train.next_batch(n_batch)
    sess.run(optm, feed_dict = {x: train_x, y: train_y})

    if epoch % n_prt == 0:
        test_x, test_y = mnist.test.next_batch(n_batch)
        c1 = sess.run(loss, feed_dict = {x: train_x, y: train_y})
        c2 = sess.run(loss, feed_dict = {x: test_x, y: test_y})
        loss_record_train.append(c1)
        loss_record_test.append(c2)
        print ("Iter : {}".format(epoch))
        print ("Cost : {}".format(c1))

# %%
plt.figure(figsize=(10,8))
plt.plot(np.arange(len(loss_record_train))*n_prt, loss_record_train, label = 'training')
plt.plot(np.arange(len(loss_record_test))*n_prt, loss_record_test, label = 'testing')
plt.xlabel('iteration', fontsize = 15)
plt.ylabel('loss', fontsize = 15)
plt.legend(fontsize = 12)
plt.ylim([0, np.max(loss_record_train)])
plt.show()

# %% [markdown]
# ## Test

# %%
test_x, test_y = mnist.test.next_batch(100)

my_pred = sess.run(pred, feed_dict = {x : test_x})
my_pred = np.argmax(my_pred, axis = 1)

labels = np.argmax(test_y, axis = 1)

accr = np.mean(np.equal(my_pred, labels))
print("Accuracy : {}%".format(accr*100))
