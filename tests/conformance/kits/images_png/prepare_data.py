"""Make this kit's small data: 96 training and 48 test 16x16 grey PNG
images (written with zlib, no imaging library needed) of a ring, a cross or
a blob, and their classes."""
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(2024)
SIZE = 16


def png(pixels: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of ``pixels`` (uint8, height x width)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))

    raw = b''.join(b'\x00' + row.tobytes() for row in pixels)
    header = struct.pack('>IIBBBBB', pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw))
            + chunk(b'IEND', b''))


def shape(kind):
    rows, cols = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2 + rng.normal(0, 1.0, 2)[:, None, None]
    radius = np.hypot(rows, cols)
    if kind == 'ring':
        image = np.abs(radius - rng.uniform(4, 6)) < 1.2
    elif kind == 'cross':
        image = (np.abs(rows) < 1.3) | (np.abs(cols) < 1.3)
    else:
        image = radius < rng.uniform(3, 5)
    noisy = 200 * image + rng.normal(30, 45, (SIZE, SIZE))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write(kit, name, n, first_id):
    rows = []
    for image_id in range(first_id, first_id + n):
        kind = ['blob', 'cross', 'ring'][rng.randint(3)]
        file_name = f'img_{image_id}.png'
        (kit / 'data' / 'imgs' / file_name).write_bytes(png(shape(kind)))
        rows.append((file_name, kind))
    pd.DataFrame(rows, columns=['id', 'class']).to_csv(kit / 'data' / name, index=False)


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data' / 'imgs').mkdir(parents=True, exist_ok=True)
    write(kit, 'train.csv', 96, 100)
    write(kit, 'test.csv', 48, 900)
