from sklearn.base import BaseEstimator, RegressorMixin


class FailingRegressor(RegressorMixin, BaseEstimator):
    """A regressor whose ``fit`` always raises, to exercise error handling."""

    def fit(self, X, y):
        raise ValueError("this estimator always fails in fit")

    def predict(self, X):  # never reached
        raise RuntimeError("predict called on an unfitted estimator")


def get_estimator():
    return FailingRegressor()
