# Broken on purpose: a Lambda layer (arbitrary code) the grader must refuse.
# %% [markdown]
# # MNIST with Keras
#
# From the lecture notes (seed 003, "TensorFlow Neural Network"): the same digits, with
# Keras. Flatten each 28x28 image to 784 numbers, connect every one of them to 10 softmax
# outputs, compile with Adam and sparse categorical cross entropy, train, evaluate, then save
# the model and load it back.
#
# Fill in every `___`. Keep the name `model`: the grader reads it (its layers, its weights,
# how it was compiled, and the file you saved).

# %%
import tensorflow as tf

#TF2 Includes MNIST data already (mostly for learning purposes)
mnist = tf.keras.datasets.mnist

(x_train, y_train), (x_test, y_test) = mnist.load_data()
#We need to level color data to 0 to 1 range
x_train, x_test = x_train / 255.0, x_test / 255.0

#We are classifying digits 0 to 9
class_names = list(range(10))

# %% [markdown]
# ## Phase 1: assemble the graph
# Two layers: flatten the image, then connect every pixel to every digit.

# %%
model = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(input_shape=(28, 28)),
    tf.keras.layers.Lambda(lambda t: t * 2.0),
    tf.keras.layers.Dense(10, activation='softmax')
])

# %% [markdown]
# ## Loss function and optimizer
# Use the 'adam' optimizer and the sparse categorical cross entropy (integer labels).

# %%
model.compile(
    optimizer='adam',
    loss='sparse_categorical_crossentropy',
    metrics=['accuracy'])

# %% [markdown]
# ## Train, evaluate, save and load

# %%
model.fit(x_train, y_train, epochs=5)

model_loss, model_acc = model.evaluate(x_test, y_test, verbose=2)

print(f"Model Loss: {model_loss*100:.1f}%")
print(f"Model Accuray:{model_acc*100:.1f}%")

model.save('MINST.h5')

new_model = tf.keras.models.load_model('MINST.h5')
