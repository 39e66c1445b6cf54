"""Measures: the figures the checks judge, as plain functions of the evidence or of arrays.

A measure computes one figure (a float, an array of predictions, a small dataclass) and
nothing else: no threshold, no message, no points. The checks (`grader.checks.graph`,
`.autoencoder`, `.keras`, `.values`) are the judges: each calls its measures, compares the
figure with the spec's threshold and phrases the verdict. The feedback figures
(`grader.report.figures`) and the calibration benchmark (`benchmarks/calibrate.py`) call the
same measures, so that a figure is computed in one place only.

A measure raises `Missing` when an artifact it needs was not produced, and `ValueError` when
the student's weights do not fit the lecture's network (`ModelRefused` when a Keras model
cannot be read); the judges turn these into messages.

- `student`: the student's own TF1 graph, handed back as data and evaluated by the grader;
- `network`: the figures' types, the grader's data draws, records, restore pairs, labels;
- `keras`: the student's Keras model rebuilt from data, and what the sandbox reported of it;
- `values`: numbers the student's code computed, record lengths, call counts.
"""

from grader.checks.measures.keras import (
    Compiled,
    LearningRates,
    compiled_with,
    decayed_rate,
    event_scalars,
    learning_rates,
    name_of,
    reference_model,
    saved_models,
    scalar_series,
    structure_differences,
    student_model,
)
from grader.checks.measures.network import (
    HELDOUT_SEED,
    INIT_SEED,
    LOSS_DATA_SEED,
    LOSS_FUNCTION_SEED,
    Accuracy,
    Agreement,
    RecordFigures,
    RestorePair,
    heldout_accuracy,
    heldout_digits,
    heldout_points,
    is_one_hot,
    label_agreement,
    latent_separation,
    loss_records,
    max_difference,
    restore_pairs,
    training_record,
)
from grader.checks.measures.values import (
    CallRun,
    DrawnFound,
    RecordFound,
    ValueFound,
    call_counts,
    computed_value,
    drawn_values,
    record_lengths,
)

__all__ = [
    "DrawnFound",
    "drawn_values",
    "HELDOUT_SEED",
    "INIT_SEED",
    "LOSS_DATA_SEED",
    "LOSS_FUNCTION_SEED",
    "Accuracy",
    "Agreement",
    "CallRun",
    "Compiled",
    "LearningRates",
    "RecordFigures",
    "RecordFound",
    "RestorePair",
    "ValueFound",
    "call_counts",
    "compiled_with",
    "computed_value",
    "decayed_rate",
    "event_scalars",
    "heldout_accuracy",
    "heldout_digits",
    "heldout_points",
    "is_one_hot",
    "label_agreement",
    "latent_separation",
    "learning_rates",
    "loss_records",
    "max_difference",
    "name_of",
    "record_lengths",
    "reference_model",
    "restore_pairs",
    "saved_models",
    "scalar_series",
    "structure_differences",
    "student_model",
    "training_record",
]
