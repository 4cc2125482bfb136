"""Folders of the kit's data that a fold reads itself (images).

Image kits return ``X`` as ``(folder, ids)``, the folder being where the
images lie (``os.path.join(path, 'data', 'imgs')``), and their workflow reads
the images from it during the fold, as ramp-workflow's image classifiers do.
Such a folder is shipped into the fold (``input/kit/<folder>``, read-only)
and named in the pickled ``X`` relative to the kit, where the harness runs
the fold from, as ``ramp-test`` runs it from the kit's folder. Only folders
inside the kit's ``data/`` and below it are shipped: ``data/`` itself holds
the test labels. ``datarun.ramp_kits`` applies the same rule on the trusted
side.
"""
import os
from pathlib import Path

DATA_DIR = "data"


def kit_folder(value, kit_dir: Path) -> str | None:
    """The folder ``value`` names, relative to the kit (posix), when it is
    a folder of the kit's data; None otherwise."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(value) if os.path.isabs(value) else kit_dir / value
    try:
        resolved = path.resolve()
        relative = resolved.relative_to(kit_dir.resolve())
    except (OSError, ValueError):
        return None
    if not resolved.is_dir() or relative.parts[:1] != (DATA_DIR,):
        return None
    if len(relative.parts) == 1:
        raise ValueError(f"X names the kit's {DATA_DIR}/ folder, which holds the test labels; "
                         f"put the files the folds read in a folder inside {DATA_DIR}/")
    return relative.as_posix()


def with_kit_folders(X, kit_dir: Path) -> tuple[object, list[str]]:
    """``X`` with the kit folders among its top-level items (a tuple or list
    such as ``(folder, ids)``) named relative to the kit, and those folders."""
    if not isinstance(X, tuple | list) or len(X) > 16:
        return X, []
    items, folders = list(X), []
    for i, item in enumerate(items):
        folder = kit_folder(item, Path(kit_dir))
        if folder is not None:
            items[i] = folder
            folders.append(folder)
    return (type(X)(items) if folders else X), folders
