"""Lecture code from 2018 on today's libraries (runs in the sandboxed child only).

The notes build data with `np.asmatrix` and hand the matrices to matplotlib and scikit-learn,
which today refuse `np.matrix` ("'vertices' must be 2D", "np.matrix is not supported"), and
call `model.predict_classes`, which Keras has since removed.
Where the student's code uses them, the few entry points the notes call are wrapped to turn
a matrix argument into the plain array those libraries used to make of it. Nothing else
changes; code that passes arrays sees no difference.

Nobody sits at the keyboard while grading: `input()`, `plt.waitforbuttonpress()`,
`plt.ginput()` and `plt.pause(t)` return at once (without sleeping), with a note in the
student's output saying so.
"""

from __future__ import annotations

import builtins
import functools
import sys

import numpy as np

_NOTED: set[str] = set()


def _note(name: str, text: str) -> None:
    """Tell the student, once per call name, that a blocking call did not wait."""
    if name not in _NOTED:
        _NOTED.add(name)
        print(f"[grader] {text}", file=sys.stdout, flush=True)


def _input(prompt=""):
    if prompt:
        print(prompt, end="", flush=True)
    _note("input", "input() is not available while grading: returned ''")
    return ""


def _no_wait(plt) -> None:
    """plt.pause, waitforbuttonpress and ginput (pyplot and Figure) return at once."""
    import matplotlib.figure

    def pause(interval=0, *args, **kwargs):
        _note("pause", "plt.pause() does not wait while grading: returned at once")

    def waitforbuttonpress(self=None, timeout=-1, *args, **kwargs):
        _note("waitforbuttonpress", "waitforbuttonpress() has no one to press: returned None")

    def ginput(self=None, n=1, *args, **kwargs):
        _note("ginput", "ginput() has no one to click: returned no points")
        return []

    plt.pause = pause
    matplotlib.figure.Figure.waitforbuttonpress = waitforbuttonpress
    matplotlib.figure.Figure.ginput = ginput


def _plain(value):
    return np.asarray(value) if isinstance(value, np.matrix) else value


def _accept_matrices(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()})

    return wrapper


def install(code: str) -> None:
    builtins.input = _input
    if "matplotlib" in code:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.axes
        import matplotlib.pyplot

        _no_wait(matplotlib.pyplot)

        for name in ("plot", "scatter", "imshow", "hist", "contour", "contourf"):
            setattr(
                matplotlib.axes.Axes, name, _accept_matrices(getattr(matplotlib.axes.Axes, name))
            )
    if "predict_classes" in code:
        # Keras removed Sequential.predict_classes (TF 2.6); the notes call it.
        import keras

        def predict_classes(self, x, *args, **kwargs):
            probs = self.predict(np.asarray(x), *args, **kwargs)
            return (
                np.argmax(probs, axis=-1) if probs.shape[-1] > 1 else (probs > 0.5).astype("int32")
            )

        if not hasattr(keras.Model, "predict_classes"):
            keras.Model.predict_classes = predict_classes
    if "OneHotEncoder" in code:
        from sklearn.preprocessing import OneHotEncoder

        for name in ("fit", "fit_transform", "transform"):
            setattr(OneHotEncoder, name, _accept_matrices(getattr(OneHotEncoder, name)))
