from sklearn.base import BaseEstimator
from sklearn.ensemble import GradientBoostingRegressor


class Regressor(BaseEstimator):
    def __init__(self):
        self.reg = GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=2)

    def fit(self, X, y):
        self.reg.fit(X, y)

    def predict(self, X):
        return self.reg.predict(X)
