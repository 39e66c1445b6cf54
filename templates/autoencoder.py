# %% [markdown]
# # An autoencoder on MNIST digits 1, 5 and 6
#
# From the lecture notes (seed 004, "Autoencoder"): an encoder squeezes each 784-pixel image
# into a **2-D latent code**, a decoder rebuilds the image from it, and training minimizes
# the squared difference between the two. Structure 784-500-300-2-300-500-784, `tanh` for the
# hidden layers; `latent` and `reconst` have no activation.
#
# Fill in every `___`. Keep the names `x`, `weights`, `biases`, `encoder`, `decoder`,
# `latent`, `reconst`, `loss`, `optm`, `sess`, `latent_input`: the grader reads them.

# %%
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf

# %%
from tensorflow.examples.tutorials.mnist import input_data
mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)

train_idx = ((np.argmax(mnist.train.labels, 1) == 1) | \
             (np.argmax(mnist.train.labels, 1) == 5) | \
             (np.argmax(mnist.train.labels, 1) == 6))
test_idx = ((np.argmax(mnist.test.labels, 1) == 1) | \
            (np.argmax(mnist.test.labels, 1) == 5) | \
            (np.argmax(mnist.test.labels, 1) == 6))

train_imgs = mnist.train.images[train_idx]
train_labels = mnist.train.labels[train_idx]
test_imgs = mnist.test.images[test_idx]
test_labels = mnist.test.labels[test_idx]
n_train = train_imgs.shape[0]
n_test = test_imgs.shape[0]

print ("The number of training images : {}, shape : {}".format(n_train, train_imgs.shape))
print ("The number of testing images : {}, shape : {}".format(n_test, test_imgs.shape))

# %% [markdown]
# ## Structure: 784 inputs, encoder 500 and 300 nodes, a 2-D latent code, decoder 300 and 500

# %%
# Shape of input and latent variable
n_input = ___

# Encoder structure
n_encoder1 = ___
n_encoder2 = ___

n_latent = ___

# Decoder structure
n_decoder2 = ___
n_decoder1 = ___

weights = {
    'encoder1' : tf.Variable(tf.random_normal([n_input, n_encoder1], stddev = 0.1)),
    'encoder2' : tf.Variable(tf.random_normal([n_encoder1, n_encoder2], stddev = 0.1)),
    'latent' : tf.Variable(tf.random_normal([n_encoder2, n_latent], stddev = 0.1)),
    'decoder2' : tf.Variable(tf.random_normal([n_latent, n_decoder2], stddev = 0.1)),
    'decoder1' : tf.Variable(tf.random_normal([n_decoder2, n_decoder1], stddev = 0.1)),
    'reconst' : tf.Variable(tf.random_normal([n_decoder1, n_input], stddev = 0.1))
}

biases = {
    'encoder1' : tf.Variable(tf.random_normal([___], stddev = 0.1)),
    'encoder2' : tf.Variable(tf.random_normal([___], stddev = 0.1)),
    'latent' : tf.Variable(tf.random_normal([___], stddev = 0.1)),
    'decoder2' : tf.Variable(tf.random_normal([___], stddev = 0.1)),
    'decoder1' : tf.Variable(tf.random_normal([___], stddev = 0.1)),
    'reconst' : tf.Variable(tf.random_normal([___], stddev = 0.1))
}

x = tf.placeholder(tf.float32, [None, n_input])

# %% [markdown]
# ## Encoder and decoder
# `tanh` for the hidden layers; `latent` and `reconst` get no activation function.

# %%
def encoder(x, weights, biases):
    encoder1 = tf.add(tf.matmul(x, weights['encoder1']), biases['encoder1'])
    encoder1 = tf.nn.tanh(encoder1)

    encoder2 = tf.add(tf.matmul(encoder1, weights['encoder2']), biases['encoder2'])
    encoder2 = tf.nn.tanh(encoder2)

    latent = tf.add(tf.matmul(encoder2, weights['latent']), biases['latent'])
    return latent

def decoder(latent, weights, biases):
    # YOUR CODE HERE
    ___
    return reconst

# %% [markdown]
# ## Loss and optimizer

# %%
LR = 0.0001

latent = encoder(x, weights, biases)
reconst = decoder(latent, weights, biases)
loss = tf.square(___)
loss = tf.reduce_mean(loss)

optm = tf.train.AdamOptimizer(LR).minimize(loss)

# %%
n_batch = 50
n_iter = 2500
n_prt = 250

def train_batch_maker(batch_size):
    random_idx = np.random.randint(n_train, size = batch_size)
    return train_imgs[random_idx], train_labels[random_idx]

def test_batch_maker(batch_size):
    random_idx = np.random.randint(n_test, size = batch_size)
    return test_imgs[random_idx], test_labels[random_idx]

sess = tf.Session()

init = tf.global_variables_initializer()
sess.run(init)

loss_record_train = []
loss_record_test = []
for epoch in range(n_iter):
    train_x, _ = train_batch_maker(n_batch)
    sess.run(optm, feed_dict = {x : ___})

    if epoch % n_prt == 0:
        test_x, _ = test_batch_maker(n_batch)
        c1 = sess.run(loss, feed_dict = {x: train_x})
        c2 = sess.run(loss, feed_dict = {x: test_x})
        loss_record_train.append(c1)
        loss_record_test.append(c2)
        print ("Iter : {}".format(epoch))
        print ("Cost : {}".format(c1))

# %%
test_x, test_y = test_batch_maker(500)
test_y = np.argmax(test_y, axis = 1)
test_latent = sess.run(latent, feed_dict = {x: test_x})

plt.figure(figsize = (10,10))
plt.scatter(test_latent[test_y == 1,0], test_latent[test_y == 1,1], label = '1')
plt.scatter(test_latent[test_y == 5,0], test_latent[test_y == 5,1], label = '5')
plt.scatter(test_latent[test_y == 6,0], test_latent[test_y == 6,1], label = '6')
plt.title('Latent Space', fontsize=15)
plt.xlabel('Z1', fontsize=15)
plt.ylabel('Z2', fontsize=15)
plt.legend(fontsize = 15)
plt.axis('equal')
plt.show()

# %% [markdown]
# ## Data generation: the decoder alone, from a point of the latent space

# %%
new_data = np.array([[-4, 0]])

latent_input = tf.placeholder(tf.float32, [None, ___])
reconst = decoder(___, weights, biases)
fake_image = sess.run(reconst, feed_dict = {latent_input: new_data})

plt.figure(figsize=(8,7))
plt.imshow(fake_image.reshape(28,28), 'gray')
plt.title('Generated Fake Image', fontsize = 15)
plt.xticks([])
plt.yticks([])
plt.show()
