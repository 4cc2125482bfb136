"""Make this kit's small data: 60 training and 30 test 24x24 images, each
with 0 to 3 bright discs in noise, and the discs' (row, col, radius)."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(2024)
SIZE = 24


def images(n):
    X = rng.normal(0, 0.3, (n, SIZE, SIZE))
    rows, cols = np.mgrid[:SIZE, :SIZE]
    labels = []
    for i in range(n):
        for _ in range(rng.randint(0, 4)):
            radius = rng.uniform(1.5, 3.5)
            row, col = rng.uniform(radius, SIZE - radius, 2)
            X[i][(rows - row) ** 2 + (cols - col) ** 2 <= radius ** 2] += 2.0
            labels.append((i, round(row, 3), round(col, 3), round(radius, 3)))
    return X, pd.DataFrame(labels, columns=['i', 'row_p', 'col_p', 'radius_p'])


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    for prefix, n in (('train', 60), ('test', 30)):
        X, labels = images(n)
        np.save(kit / 'data' / f'{prefix}_images.npy', X)
        labels.to_csv(kit / 'data' / f'{prefix}_labels.csv', index=False)
