import numpy as np


class FeatureExtractor:
    def fit(self, X_df, y):
        return self

    def transform(self, X_df):
        return np.c_[X_df['rain'].to_numpy(), (X_df['soil'] == 'clay').to_numpy(dtype=float)]
