"""Regenerate data/train.csv and data/test.csv for the breast_cancer kit.

The data come from scikit-learn's bundled copy of the Breast Cancer
Wisconsin (Diagnostic) data set (``sklearn.datasets.load_breast_cancer``),
so no download is needed. The split is deterministic (stratified, 80/20,
fixed seed). The target is kept as scikit-learn encodes it:
0 = malignant, 1 = benign.

Usage: python prepare_data.py  (from this directory)
"""
import os

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

TARGET = 'target'
RANDOM_STATE = 42


def main():
    data = load_breast_cancer(as_frame=True)
    df = data.data.rename(columns=lambda c: c.replace(' ', '_'))
    df[TARGET] = data.target.to_numpy()
    df_train, df_test = train_test_split(
        df, test_size=0.2, random_state=RANDOM_STATE, stratify=df[TARGET])
    data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
    os.makedirs(data_dir, exist_ok=True)
    df_train.to_csv(os.path.join(data_dir, 'train.csv'), index=False)
    df_test.to_csv(os.path.join(data_dir, 'test.csv'), index=False)


if __name__ == '__main__':
    main()
