# The lecture notes' own Keras model (seed 003, CPSC 501), as written there.
import tensorflow as tf

#TF2 Includes MNIST data already (mostly for learning purposes)
mnist = tf.keras.datasets.mnist

(x_train, y_train), (x_test, y_test) = mnist.load_data()
#We need to level color data to 0 to 1 range
x_train, x_test = x_train / 255.0, x_test / 255.0

#We are classifying digits 0 to 9
class_names = list(range(10))

model = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(input_shape=(28, 28)),
    tf.keras.layers.Dense(10, activation='softmax')
])

model.compile(
    optimizer='adam',
    loss='sparse_categorical_crossentropy',
    metrics=['accuracy'])

model.fit(x_train, y_train, epochs=5)

model_loss, model_acc = model.evaluate(x_test, y_test, verbose=2)

print(f"Model Loss: {model_loss*100:.1f}%")
print(f"Model Accuray:{model_acc*100:.1f}%")

model.save('MINST.h5')

new_model = tf.keras.models.load_model('MINST.h5')
