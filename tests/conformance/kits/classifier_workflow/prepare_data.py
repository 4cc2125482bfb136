"""Make this kit's small data: 300 training and 120 test rows, written with
';' between fields and ',' as the decimal mark (as European exports are)."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(31)


def table(n):
    X = rng.normal(0, 1, (n, 5))
    latent = X[:, 0] - 0.8 * X[:, 2] + 0.3 * X[:, 4] + rng.normal(0, 0.6, n)
    quality = np.where(latent < -0.4, 'bad', np.where(latent < 0.7, 'good', 'great'))
    out = pd.DataFrame(X.round(4), columns=['acidity', 'sugar', 'chlorides', 'sulphates',
                                            'alcohol'])
    out['quality'] = quality
    return out


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    for name, n in (('train.csv', 300), ('test.csv', 120)):
        table(n).to_csv(kit / 'data' / name, sep=';', decimal=',', index=False)
