"""Running student code: the only place it runs, always in a child process.

`runner` holds the small interface (a `Job` in, a `RunOutcome` out, through a `Runner`) and
the cold runner; `child` is what runs inside the sandbox; in the child, `tfcompat` is the
TensorFlow 1 layer (and the seeded TF 2 set-up), `legacy` lets 2018 lecture code run on
today's libraries, `datasets` serves the public data splits under the lectures' names, and
`keras_export` hands a Keras model back as plain data. This package's `__init__` imports nothing, so the child process
(`python -I -m grader.sandbox.child`) loads only what it needs.
"""
