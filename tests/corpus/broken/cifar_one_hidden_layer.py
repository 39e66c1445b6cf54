# Broken on purpose: the second hidden layer is missing.
# %% [markdown]
# # Homework: a Keras image classifier for CIFAR-10
#
# From the lecture notes (seed 001, "Homework: Keras Implementation of Image Classifier"):
# CIFAR-10 holds 32x32 colour pictures of 10 kinds of objects (airplane, automobile, bird,
# cat, deer, dog, frog, horse, ship, truck, labelled 0-9). Build the network in `NN_model`,
# following the digit classifier with a hidden layer, made bigger:
#
# * the input has 32 * 32 * 3 = **3072** neurons (flatten each picture);
# * **two hidden layers** of **3000** and **2000** neurons, both **sigmoid**;
# * a **softmax** output layer of 10.
#
# The notes expect about 30% accuracy from this network (a CNN does better, next lecture).
# Fill in every `___`. `NN_model()` must return the compiled model: the grader calls it.

# %%
import os
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Flatten


def NN_model():
    model = Sequential()
    model.add(Flatten(input_shape=(32, 32, 3)))
    model.add(Dense(units=3000, activation='sigmoid'))
    model.add(Dense(units=10, activation='softmax'))
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"], optimizer="sgd")
    return model


# %% [markdown]
# ## Training (Train_NN_cifar.py)

# %%
if __name__ == "__main__":
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.cifar10.load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    y_train = tf.keras.utils.to_categorical(y_train, 10)
    y_test = tf.keras.utils.to_categorical(y_test, 10)

    model = NN_model()
    model.fit(x_train, y_train, batch_size=100, epochs=5)
    print(model.evaluate(x_test, y_test, batch_size=100))

    os.makedirs("./model", exist_ok=True)
    model.save("./model/cifar_model.h5")
