"""The runner's input cache keeps only what matches the hash a ticket names."""
import hashlib

import pytest

from workers.runner_client import InputCache, InputMismatch


def test_an_input_is_kept_under_its_hash_and_fetched_once(tmp_path):
    cache = InputCache(tmp_path / "cache")
    data = b"the training features"
    digest = hashlib.sha256(data).hexdigest()
    calls = []

    def download(dest):
        calls.append(dest)
        dest.write_bytes(data)

    path = cache.get(digest, download)
    assert path.read_bytes() == data
    assert cache.get(digest, download) == path
    assert len(calls) == 1


def test_an_input_whose_content_does_not_match_its_hash_is_refused_and_not_kept(tmp_path):
    cache = InputCache(tmp_path / "cache")
    digest = hashlib.sha256(b"what the ticket names").hexdigest()
    with pytest.raises(InputMismatch, match="not the .* its ticket names"):
        cache.get(digest, lambda dest: dest.write_bytes(b"something else"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    with pytest.raises(InputMismatch, match="is not a sha256"):
        cache.get("../../etc/passwd", lambda dest: None)
