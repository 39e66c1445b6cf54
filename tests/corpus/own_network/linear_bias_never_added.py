# %% [markdown]
# # Linear classifier: weights and a bias
#
# From the lecture notes (seed 004, "Weights and Bias"): the same data as the perceptron,
# but instead of a column of ones the network gets a **bias** variable. The inputs are now
# only $(x_1, x_2)$: **2 inputs**.
#
# Fill in every `___`. Keep the names `x`, `y`, `weights`, `biases`, `build_model`, `pred`,
# `loss`, `optm`, `sess`, `loss_record`, `w_hat`, `b_hat`: the grader reads them.

# %%
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf

# %%
# training data generation (as for the perceptron)
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
train_y = np.vstack([np.ones([N,1]), np.zeros([M,1])])
train_y = np.asmatrix(train_y)

# %% [markdown]
# ## Weights and bias
# Drop the column of ones: the bias is now a variable of its own.

# %%
n_input = 2
n_output = 1

train_X = train_X[:,1:3]

# define network
def build_model(x, weights, biases):
    output = tf.matmul(x, weights['output'])
    return output

weights = {
    'output' : tf.Variable(tf.random_normal([n_input, n_output], stddev = 0.1))
}
biases = {
    'output' : tf.Variable(tf.random_normal([n_output], stddev = 0.1))
}

x = tf.placeholder(tf.float32, [None, n_input])
y = tf.placeholder(tf.float32, [None, n_output])

# compare the prediction with the labels
pred = build_model(x, weights, biases)
loss = tf.nn.sigmoid_cross_entropy_with_logits(logits=pred, labels=y)
loss = tf.reduce_mean(loss)

LR = 0.05
optm = tf.train.GradientDescentOptimizer(LR).minimize(loss)

# %%
sess = tf.Session()
init = tf.global_variables_initializer()
sess.run(init)

n_batch = 50
n_iter = 15000
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

x1p = np.arange(0, 8, 0.01).reshape(-1, 1)
x2p = - w_hat[0,0]/w_hat[1,0]*x1p - b_hat[0]/w_hat[1,0]

plt.figure(figsize=(10, 8))
plt.plot(x1[C1], x2[C1], 'ro', alpha = 0.4, label = 'C1')
plt.plot(x1[C0], x2[C0], 'bo', alpha = 0.4, label = 'C0')
plt.plot(x1p, x2p, 'g', linewidth = 3, label = '')
plt.xlim([0, 8])
plt.xlabel('$x_1$', fontsize = 15)
plt.ylabel('$x_2$', fontsize = 15)
plt.legend(loc = 1, fontsize = 12)
plt.show()
