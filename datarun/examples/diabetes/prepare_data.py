"""Regenerate data/train.csv and data/test.csv for the diabetes kit.

The data come from scikit-learn's bundled copy of the diabetes data set
(``sklearn.datasets.load_diabetes``), so no download is needed. The
features are the standardised ones scikit-learn returns by default. The
split is deterministic (80/20, fixed seed).

Usage: python prepare_data.py  (from this directory)
"""
import os

from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

TARGET = 'target'
RANDOM_STATE = 42


def main():
    data = load_diabetes(as_frame=True)
    df = data.data.copy()
    df[TARGET] = data.target.to_numpy()
    df_train, df_test = train_test_split(
        df, test_size=0.2, random_state=RANDOM_STATE)
    data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
    os.makedirs(data_dir, exist_ok=True)
    df_train.to_csv(os.path.join(data_dir, 'train.csv'), index=False)
    df_test.to_csv(os.path.join(data_dir, 'test.csv'), index=False)


if __name__ == '__main__':
    main()
