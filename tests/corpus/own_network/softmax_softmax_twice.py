# %% [markdown]
# # Softmax classifier: one-hot labels and two outputs
#
# From the lecture notes (seed 004, "One-hot Encoding"): the labels $y \in \{1, 0\}$ become
# one-hot rows $[0, 1]$ (C1) and $[1, 0]$ (C0), made with scikit-learn's `OneHotEncoder`;
# the network gets **2 outputs**, and `tf.nn.sigmoid_cross_entropy_with_logits` becomes
# `tf.nn.softmax_cross_entropy_with_logits`.
#
# Fill in every `___`. Keep the names `x`, `y`, `weights`, `biases`, `build_model`, `pred`,
# `loss`, `optm`, `sess`, `loss_record`, `train_X`, `train_y`: the grader reads them.

# %%
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
from sklearn.preprocessing import OneHotEncoder

# %%
# training data generation (as for the perceptron), without the column of ones
m = 1000
x1 = 8*np.random.rand(m, 1)
x2 = 7*np.random.rand(m, 1) - 4
g = 0.8*x1 + x2 - 3
C1 = np.where(g >= 0)[0]
C0 = np.where(g < 0)[0]
N = C1.shape[0]
M = C0.shape[0]
m = N + M
X1 = np.hstack([x1[C1], x2[C1]])
X0 = np.hstack([x1[C0], x2[C0]])
train_X = np.vstack([X1, X0])
train_X = np.asmatrix(train_X)
train_y = np.vstack([np.ones([N,1]), np.zeros([M,1])])

# %% [markdown]
# ## One-hot encoding
# (Today's scikit-learn refuses `np.matrix`: keep `train_y` a plain array.)

# %%
ohe = OneHotEncoder(handle_unknown='ignore')
train_y = ohe.fit_transform(train_y).toarray()
print(train_y)

# %%
# the number of output nodes changes
n_input = 2
n_output = 2

def build_model(x, weights, biases):
    output = tf.add(tf.matmul(x, weights['output']), biases['output'])
    output = tf.nn.softmax(output)
    return output

weights = {
    'output' : tf.Variable(tf.random_normal([n_input, n_output], stddev = 0.1))
}
biases = {
    'output' : tf.Variable(tf.random_normal([n_output], stddev = 0.1))
}

x = tf.placeholder(tf.float32, [None, n_input])
y = tf.placeholder(tf.float32, [None, n_output])

pred = build_model(x, weights, biases)
loss = tf.nn.softmax_cross_entropy_with_logits(logits=pred, labels=y)
loss = tf.reduce_mean(loss)

LR = 0.05
optm = tf.train.GradientDescentOptimizer(LR).minimize(loss)

# %%
sess = tf.Session()
init = tf.global_variables_initializer()
sess.run(init)

n_batch = 50
n_iter = 10000
n_prt = 250

loss_record = []
for epoch in range(n_iter):
    sess.run(optm, feed_dict = {x: train_X, y: train_y})
    if epoch % n_prt == 0:
        loss_record.append(sess.run(loss, feed_dict = {x: train_X, y: train_y}))

w_hat = sess.run(weights['output'])
b_hat = sess.run(biases['output'])

# %%
plt.figure(figsize=(10,8))
plt.plot(np.arange(len(loss_record))*n_prt, loss_record)
plt.xlabel('iteration', fontsize = 15)
plt.ylabel('loss', fontsize = 15)
plt.show()

print(w_hat)

x1p = np.arange(0, 8, 0.01).reshape(-1, 1)
x2p = - w_hat[0,0]/w_hat[1,0]*x1p - b_hat[0]/w_hat[1,0]
x3p = - w_hat[0,1]/w_hat[1,1]*x1p - b_hat[1]/w_hat[1,1]

plt.figure(figsize=(10, 8))
plt.plot(x1[C1], x2[C1], 'ro', alpha = 0.4, label = 'C1')
plt.plot(x1[C0], x2[C0], 'bo', alpha = 0.4, label = 'C0')
plt.plot(x1p, x2p, 'k', linewidth = 3, label = '')
plt.plot(x1p, x3p, 'g', linewidth = 3, label = '')
plt.xlim([0, 8])
plt.xlabel('$x_1$', fontsize = 15)
plt.ylabel('$x_2$', fontsize = 15)
plt.legend(loc = 1, fontsize = 12)
plt.show()
