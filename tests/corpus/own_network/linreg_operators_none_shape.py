# %% [markdown]
# # Linear regression with TensorFlow
#
# From the lecture notes (seed 000, section 3.2): given inputs $x_i$ and outputs $y_i$, find
# $\omega$ and $b$ of $\hat{y}_i = \omega x_i + b$ minimizing the mean squared error. The data
# are generated with $\omega = 2$ and $b = 1$ plus noise; training should recover them.
#
# Fill in every `___`: the placeholders, the weights and biases, the MSE loss, the
# gradient descent optimizer, and what to feed. Keep the names `x`, `y`, `weights`, `biases`,
# `model`, `pred`, `loss`, `optm`, `sess`, `w_hat`, `b_hat`: the grader reads them.

# %%
import tensorflow as tf
import numpy as np
import matplotlib.pyplot as plt

data_x = np.linspace(-1, 1, 100)
data_y = 2 * data_x + 1 + np.random.randn(*data_x.shape) * 0.3

plt.scatter(data_x, data_y)
plt.show()

# %% [markdown]
# ## Parameter learning (or estimation) with TensorFlow
# Define the decision variables, and placeholders for a mini-batch of **10** points.

# %%
weights = {
    'w' : tf.Variable(tf.random_normal([1], stddev=0.1))
}
biases = {
    'b' : tf.Variable(tf.random_normal([1], stddev=0.1))
}

x = tf.placeholder(tf.float32, [None])
y = tf.placeholder(tf.float32, [None])

# %% [markdown]
# $\min_{\omega,b} \frac{1}{m} \sum_{i=1}^{m} (y_i - \hat{y}_i)^2$

# %%
def model(x, weights, biases):
    return x*weights['w'] + biases['b']

# define loss
pred = model(x, weights, biases)
loss = tf.reduce_mean((pred - y)**2)

# define optimizer
LR = 0.04
# optm = tf.train.AdamOptimizer(LR).minimize(loss)
optm = tf.train.GradientDescentOptimizer(LR).minimize(loss)

# %%
# tf.Variable initializer
init = tf.global_variables_initializer()
sess = tf.Session()
sess.run(init)

# optimizing
n_iter = 200
n_prt = 20

for epoch in range(n_iter):
    idx = np.random.randint(0, 100, 10)
    train_x, train_y = data_x[idx], data_y[idx]
    sess.run(optm, feed_dict={x: train_x, y: train_y})
    if epoch % n_prt == 0:
        c = sess.run(loss, feed_dict={x: train_x, y: train_y})
        print ("Iter : {}".format(epoch))
        print ("Cost : {}".format(c))

w_hat = sess.run(weights['w'])
b_hat = sess.run(biases['b'])
sess.close()

# %%
print ("w_hat : {}".format(w_hat))
print ("b_hat : {}".format(b_hat))

plt.scatter(data_x, data_y)
learned_y = data_x*w_hat + b_hat
plt.plot(data_x, learned_y, 'r')
plt.show()
