from sklearn.base import BaseEstimator
from sklearn.linear_model import Ridge


class Regressor(BaseEstimator):
    def __init__(self):
        self.reg = Ridge(alpha=1.0)

    def fit(self, X, y):
        self.reg.fit(X, y)

    def predict(self, X):
        return self.reg.predict(X)
