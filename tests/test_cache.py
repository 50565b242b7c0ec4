"""The shared cache of expensive preparation (training/cache.py)."""

import json
import os

import numpy as np
import pytest

from training import cache
from training.task import RunEnv


def test_built_once_reused_and_keyed_by_content(tmp_path):
    calls = []

    def build(value):
        def make():
            calls.append(value)
            return np.full((3, 2), value, "float32")
        return make

    env = RunEnv(cache_dir=str(tmp_path))
    key = {"encoder": "a", "images": ["x.jpg", "y.jpg"]}
    first = cache.cached_array(env, "features", key, build(1.0), log=lambda _: None)
    again = cache.cached_array(env, "features", dict(reversed(list(key.items()))), build(9.0),
                               log=lambda _: None)
    other = cache.cached_array(env, "features", {**key, "encoder": "b"}, build(2.0),
                               log=lambda _: None)
    assert calls == [1.0, 2.0]  # the same key (in any order) is read, another one is built
    np.testing.assert_array_equal(again, first)
    assert float(other[0, 0]) == 2.0
    path = cache.cache_path(str(tmp_path), "features", key)
    assert json.loads(open(path[:-4] + ".json").read()) == key
    assert sorted(os.listdir(tmp_path / "features")) == sorted(
        os.path.basename(p) for p in (path, path[:-4] + ".json",
                                      cache.cache_path(str(tmp_path), "features",
                                                       {**key, "encoder": "b"}),
                                      cache.cache_path(str(tmp_path), "features",
                                                       {**key, "encoder": "b"})[:-4] + ".json"))


def test_workers_wait_for_the_chief_and_never_build(tmp_path):
    events = []
    worker = RunEnv(cache_dir=str(tmp_path), is_chief=False,
                    barrier=lambda: events.append("barrier"))
    with pytest.raises(FileNotFoundError, match="must share --cache_dir"):
        cache.cached_array(worker, "f", {"k": 1}, lambda: events.append("built"),
                           log=lambda _: None)
    assert events == ["barrier"]
    chief = RunEnv(cache_dir=str(tmp_path), barrier=lambda: events.append("chief barrier"))
    cache.cached_array(chief, "f", {"k": 1}, lambda: np.ones(2), log=lambda _: None)
    assert events[-1] == "chief barrier"
    np.testing.assert_array_equal(cache.cached_array(worker, "f", {"k": 1}, None,
                                                     log=lambda _: None), np.ones(2))
