"""Predictions as they leave the sandbox: plain numeric ``.npy`` arrays.

A problem whose predictions are numbers (classification probabilities,
regression values, clustering ids, several side by side) writes them as
they are. A problem whose rows each hold a list of objects (ramp-workflow's
detection: ``(conf, x, y, r)`` circles per image) writes an *object table*,
one float row ``(row index, *values)`` per object, sorted by row, which the
trusted side checks and turns back into lists (``datarun.scoring``): nothing
a submission returns is ever pickled. The rules match
``datarun.contract.OBJECTS`` and ``datarun.scoring.prediction_shape``.
"""
import numpy as np

# prediction_shape[0] of a problem whose rows hold lists of objects.
OBJECTS = -1


def _as_values(obj) -> np.ndarray:
    return np.atleast_1d(np.asarray(obj, dtype=float))


def predicts_objects(Predictions, y_true) -> bool:
    """Whether the problem's rows hold lists of objects, from its first label
    (every fold asks: building ``Predictions`` of all the labels can take a
    while for a large classification problem)."""
    try:
        head = y_true[:1]
    except Exception:  # noqa: BLE001 - labels that do not slice: all of them
        head = y_true
    truth = np.asarray(Predictions(y_true=head).y_pred)
    return truth.dtype.kind == "O" and truth.ndim == 1


def prediction_shape(truth) -> list[int]:
    """The shape of one row of predictions, from the kit's
    ``Predictions(y_true=...).y_pred``: ``[OBJECTS, width]`` for lists of
    objects, which are predicted with one more value than the true objects
    have (the confidence first, as ramp-workflow's detection scores read them)."""
    truth = np.asarray(truth)
    if truth.dtype.kind in "biuf":
        return list(truth.shape[1:])
    if truth.dtype.kind != "O" or truth.ndim != 1:
        raise ValueError(f"the labels are an array of {truth.dtype} of shape {truth.shape}")
    widths = set()
    for objects in truth:
        if not isinstance(objects, list | tuple | np.ndarray):
            raise ValueError(f"a row of the labels is a {type(objects).__name__}, not a list "
                             "of objects")
        widths.update(len(_as_values(o)) for o in objects)
    if len(widths) != 1:
        raise ValueError("the labels' objects do not all have the same number of values"
                         if widths else "the training labels hold no object")
    return [OBJECTS, widths.pop() + 1]


def as_numeric_array(y_pred, what: str) -> np.ndarray:
    """Numeric predictions as an array; TypeError naming what is wrong."""
    try:
        arr = np.asarray(y_pred)
    except Exception as exc:  # noqa: BLE001 - any failure means "not an array"
        raise TypeError(f"predictions on the {what} could not be turned into an array") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"predictions on the {what} must be numbers, got an array of dtype {arr.dtype}"
        )
    return arr


def object_table(y_pred, *, width: int, what: str) -> np.ndarray:
    """Lists of objects (one list per row, each object ``width`` numbers) as
    an object table; TypeError naming the first row that is not."""
    try:
        rows = list(y_pred)
    except TypeError as exc:
        raise TypeError(f"predictions on the {what} must be a list of objects per row, "
                        f"not a {type(y_pred).__name__}") from exc
    table = []
    for i, objects in enumerate(rows):
        if not isinstance(objects, list | tuple | np.ndarray):
            raise TypeError(f"row {i} of the predictions on the {what} is a "
                            f"{type(objects).__name__}, not a list of objects "
                            "(an empty list when it has none)")
        for obj in objects:
            try:
                values = _as_values(obj)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"an object of row {i} of the predictions on the {what} is "
                                f"not {width} numbers: {obj!r:.100}") from exc
            if values.ndim != 1 or len(values) != width:
                raise TypeError(f"an object of row {i} of the predictions on the {what} has "
                                f"{values.size} values, not {width}")
            table.append(np.concatenate(([i], values)))
    return np.array(table, dtype=float).reshape(len(table), width + 1)
