# %% [markdown]
# # Perceptron
#
# From the lecture notes on (artificial) neural networks: a perceptron classifies points
# $(x_1, x_2)$ into two classes separated by the line $0.8x_1 + x_2 - 3 = 0$.
# The bias is handled as the lecture does: a column of ones is added to the inputs, so the
# network has **3 inputs** and no separate bias variable.
#
# Fill in every `___`. Keep the variable names (`x`, `y`, `weights`, `pred`, `loss`, `optm`,
# `sess`, `loss_record`, `w_hat`): the grader reads them.

# %%
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf

# %% [markdown]
# ## Training data
# Class C1 is where $g = 0.8x_1 + x_2 - 3 \geq 0$. Each row of `train_X` is
# $[1, x_1, x_2]$: add the **bias column** of ones.

# %%
# training data generation
m = 1000
x1 = 8*np.random.rand(m, 1)
x2 = 7*np.random.rand(m, 1) - 4
g = 0.8*x1 + x2 - 3
C1 = np.where(g >= 0)[0]
C0 = np.where(g < 0)[0]
N = C1.shape[0]
M = C0.shape[0]
m = N + M
X1 = np.hstack([np.ones([N,1]), x1[C1], x2[C1]])
X0 = np.hstack([np.ones([M,1]), x1[C0], x2[C0]])
train_X = np.vstack([X1, X0])
train_X = np.asmatrix(train_X)

# labels for the sigmoid cross entropy: 1 for C1, 0 for C0
train_y = np.vstack([np.ones([N,1]), np.zeros([M,1])])
train_y = np.asmatrix(train_y)

plt.figure(figsize=(10, 8))
plt.plot(x1[C1], x2[C1], 'ro', alpha = 0.4, label = 'C1')
plt.plot(x1[C0], x2[C0], 'bo', alpha = 0.4, label = 'C0')
plt.legend(loc = 1, fontsize = 15)
plt.xlabel(r'$x_1$', fontsize = 15)
plt.ylabel(r'$x_2$', fontsize = 15)
plt.show()

# %% [markdown]
# ## A first perceptron, in one session
# `y_pred` is the weighted sum of the inputs; feed the training data to the optimizer.

# %%
LR = 0.05
n_iter = 10000

x = tf.placeholder(tf.float32, [None, 3])
y = tf.placeholder(tf.float32, [None, 1])
w = tf.Variable(tf.random_normal([3,1]))

y_pred = tf.matmul(x, w)
loss = tf.nn.sigmoid_cross_entropy_with_logits(logits = y_pred, labels = y)
loss = tf.reduce_mean(loss)

optm = tf.train.GradientDescentOptimizer(LR).minimize(loss)
init = tf.global_variables_initializer()

with tf.Session() as sess:
    sess.run(init)
    for epoch in range(n_iter):
        sess.run(optm, feed_dict = {x: train_X, y: train_y})
    w_hat = sess.run(w)

# %% [markdown]
# ## The perceptron as a network
# Define the input and output sizes, the placeholders, and the sigmoid cross entropy loss.

# %%
# define input and output size
n_input = 3
n_output = 1

# define weights as a dictionary
weights = {
    'output' : tf.Variable(tf.random_normal([n_output, n_input], stddev = 0.1))   # one row per output
}

# define placeholders for train_x and train_y
x = tf.placeholder(tf.float32, [None, n_input])
y = tf.placeholder(tf.float32, [None, n_output])

# define network architecture
def build_model(x, weights):
    output = tf.matmul(x, tf.transpose(weights['output']))
    return output

# define loss
pred = build_model(x, weights)
loss = tf.nn.sigmoid_cross_entropy_with_logits(logits = pred, labels = y)
loss = tf.reduce_mean(loss)

LR = 0.05
optm = tf.train.GradientDescentOptimizer(LR).minimize(loss)

# %%
n_batch = 50     # Batch size
n_iter = 10000   # Learning iteration
n_prt = 250      # Print cycle

sess = tf.Session()
init = tf.global_variables_initializer()
sess.run(init)

# training or learning
loss_record = []
for epoch in range(n_iter):
    sess.run(optm, feed_dict = {x: train_X, y: train_y})
    if epoch % n_prt == 0:
        loss_record.append(sess.run(loss, feed_dict = {x: train_X, y: train_y}))

w_hat = sess.run(weights['output']).T

# %%
plt.figure(figsize=(10,8))
plt.plot(np.arange(len(loss_record))*n_prt, loss_record)
plt.xlabel('iteration', fontsize = 15)
plt.ylabel('loss', fontsize = 15)
plt.show()

x1p = np.arange(0, 8, 0.01).reshape(-1, 1)
x2p = - w_hat[1,0]/w_hat[2,0]*x1p - w_hat[0,0]/w_hat[2,0]

plt.figure(figsize=(10, 8))
plt.plot(x1[C1], x2[C1], 'ro', alpha = 0.4, label = 'C1')
plt.plot(x1[C0], x2[C0], 'bo', alpha = 0.4, label = 'C0')
plt.plot(x1p, x2p, 'g', linewidth = 3, label = '')
plt.xlim([0, 8])
plt.xlabel('$x_1$', fontsize = 15)
plt.ylabel('$x_2$', fontsize = 15)
plt.legend(loc = 1, fontsize = 12)
plt.show()
