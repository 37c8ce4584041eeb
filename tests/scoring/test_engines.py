"""The engines behind scheduler.Engine: each name defined once, each class declaring what callers use."""

from __future__ import annotations

import inspect
from typing import get_args

from distilgpt2_scoring.engines import ENGINES, engine_class
from distilgpt2_scoring.hardware import EngineName
from distilgpt2_scoring.scheduler import Batching, Engine


def test_every_engine_name_has_one_engine_class_that_carries_that_name():
    assert set(ENGINES) == set(get_args(EngineName))
    assert {name: engine_class(name).name for name in ENGINES} == {name: name for name in ENGINES}


def test_every_engine_declares_what_the_protocol_asks_and_loads_from_the_decided_configuration():
    for name in ENGINES:
        cls = engine_class(name)
        assert cls.batching in get_args(Batching) and isinstance(cls.seeds_every_sequence, bool)
        assert inspect.signature(cls.load).parameters.keys() == inspect.signature(Engine.load).parameters.keys()
