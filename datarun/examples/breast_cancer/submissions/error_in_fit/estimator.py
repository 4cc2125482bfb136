from sklearn.base import BaseEstimator, ClassifierMixin


class FailingClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose ``fit`` always raises, to exercise error handling."""

    def fit(self, X, y):
        raise ValueError("this estimator always fails in fit")

    def predict_proba(self, X):  # never reached
        raise RuntimeError("predict_proba called on an unfitted estimator")


def get_estimator():
    return FailingClassifier()
