# Broken on purpose: no dropout, and ReLU where the notes use a sigmoid.
# %% [markdown]
# # A Keras MLP: a hidden sigmoid layer, dropout, a decaying learning rate, TensorBoard
#
# From the lecture notes: the Keras digit classifier with one hidden layer (seed 001,
# "Keras Implementation of Digit Classifier": sigmoid hidden layer, softmax output, SGD,
# categorical cross entropy, batches of 100, 15 epochs), with dropout and an
# `ExponentialDecay` learning-rate schedule (seed 003), and the loss logged for TensorBoard.
#
# Fill in every `___`. Keep the name `model`: the grader reads its layers, weights, compile
# configuration, learning-rate schedule, the file you save, and your TensorBoard logs.

# %%
import os
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Dropout

mnist = tf.keras.datasets.mnist
(x_train, y_train), (x_test, y_test) = mnist.load_data()

# 28x28 images as vectors of 784 numbers in [0, 1]; labels one-hot (categorical)
x_train = x_train.reshape(-1, 784) / 255.0
x_test = x_test.reshape(-1, 784) / 255.0
y_train = tf.keras.utils.to_categorical(y_train, 10)
y_test = tf.keras.utils.to_categorical(y_test, 10)

size_in = 784
size_hidden = 128
size_out = 10

# %% [markdown]
# ## The model: a hidden sigmoid layer, dropout, a softmax output

# %%
model = Sequential()
model.add(Dense(units=size_hidden, input_dim=size_in,
                activation='relu'))
model.add(Dense(units=size_out, input_dim=size_hidden,
                activation='softmax'))

# %% [markdown]
# ## Learning-rate decay
# Start with a large learning rate and reduce it over time:
# $0.1 \cdot 0.96^{\lfloor step / 100000 \rfloor}$.

# %%
initial_learning_rate = 0.1
lr_schedule = tf.keras.optimizers.schedules.ExponentialDecay(
    initial_learning_rate,
    decay_steps=100000,
    decay_rate=0.96,
    staircase=True)

model.compile(loss="categorical_crossentropy",
              metrics=["accuracy"],
              optimizer=tf.keras.optimizers.SGD(learning_rate=lr_schedule))

# %% [markdown]
# ## Train with TensorBoard logging, evaluate, save

# %%
tensorboard = tf.keras.callbacks.TensorBoard(log_dir="./logs")

model.fit(x_train, y_train, batch_size=100, epochs=15,
          callbacks=[tensorboard])

accuracy = model.evaluate(x_test, y_test, batch_size=100)
print(accuracy)

y = np.argmax(model.predict(x_test[:1]), axis=1)
print(y)

os.makedirs("./model", exist_ok=True)
model.save("./model/mnist_model.h5")
