"""Running student code: the only place it runs, always in a child process.

`runner` holds the small interface (a `Job` in, a `RunOutcome` out, through a `Runner`) and
the cold runner; `child` is what runs inside the sandbox; `tfcompat` is the TensorFlow 1
layer the child installs. This package's `__init__` imports nothing, so the child process
(`python -I -m grader._sandbox.child`) loads only what it needs.
"""
