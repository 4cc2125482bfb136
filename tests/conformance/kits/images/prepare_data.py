"""Make this kit's small data: 90 training and 45 test 12x12 grey images of
stripes (saved as .npy in data/imgs/), and which way their stripes run."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(31)
CLASSES = ['horizontal', 'vertical', 'diagonal']
SIZE = 12


def image(kind):
    rows, cols = np.mgrid[:SIZE, :SIZE]
    along = {'horizontal': rows, 'vertical': cols, 'diagonal': rows + cols}[kind]
    period = rng.uniform(3, 5)
    return np.sin(2 * np.pi * along / period + rng.uniform(0, 6)) + rng.normal(0, 2.0,
                                                                               (SIZE, SIZE))


def write(kit, name, n, first_id):
    rows = []
    for image_id in range(first_id, first_id + n):
        kind = CLASSES[rng.randint(3)]
        np.save(kit / 'data' / 'imgs' / f'{image_id}.npy', image(kind))
        rows.append((image_id, kind))
    pd.DataFrame(rows, columns=['id', 'class']).to_csv(kit / 'data' / name, index=False)


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data' / 'imgs').mkdir(parents=True, exist_ok=True)
    write(kit, 'train.csv', 90, 1000)
    write(kit, 'test.csv', 45, 5000)
