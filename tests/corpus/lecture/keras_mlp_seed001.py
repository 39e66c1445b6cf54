# The lecture notes' Keras digit classifier with one hidden layer (seed 001), as written there,
# with the data preparation the notes leave to Train_NN_keras.py.
import numpy as np
import tensorflow as tf
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense

(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
x_train = x_train.reshape(-1, 784) / 255.0
x_test = x_test.reshape(-1, 784) / 255.0
y_train = tf.keras.utils.to_categorical(y_train, 10)
y_test = tf.keras.utils.to_categorical(y_test, 10)
size_in, size_hidden, size_out = 784, 128, 10

model = Sequential()
model.add(Dense(units=size_hidden, input_dim=size_in,
                                     activation='sigmoid'))
model.add(Dense(units=size_out, input_dim=size_hidden,
                                     activation='softmax'))
model.compile(loss="categorical_crossentropy",
                     metrics=["accuracy"], optimizer="sgd")
model.fit(x_train, y_train, batch_size=100, epochs=15)
accuracy = model.evaluate(x_train, y_train, batch_size=100)
i = 0
y = model.predict_classes(x_test[i:i+1])
print(y)
import os
os.makedirs("./model", exist_ok=True)
model.save("./model/mnist_model.h5")
