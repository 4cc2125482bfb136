"""The work-dir contract between the worker (trusted side) and the harness.

The worker writes everything under ``input/`` and ``submission/``; the harness
writes only under ``output/``. Test labels are never part of ``input/``.
"""
INPUT_DIR = "input"
PROBLEM_FILE = "input/problem.py"
X_TRAIN = "input/X_train.pkl"
Y_TRAIN = "input/y_train.pkl"
X_TEST = "input/X_test.pkl"
FOLD = "input/fold.npz"
# The kit's folders a fold reads itself (images), as in the kit; the fold
# runs from here when the problem has any (workers.harness.kit_files).
KIT_DIR = "input/kit"
SUBMISSION_DIR = "submission"
OUTPUT_DIR = "output"
Y_PRED_TRAIN = "output/y_pred_train.npy"
Y_PRED_TEST = "output/y_pred_test.npy"
RESULT = "output/result.json"
STDOUT = "output/stdout.log"
STDERR = "output/stderr.log"
TMP_DIR = "tmp"
