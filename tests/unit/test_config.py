import json

import pytest

from curvae.core.errors import InputError
from curvae.training.config import DataConfig, ModelConfig, RunConfig, TrainConfig


def test_run_config_json_round_trip():
    cfg = RunConfig(data=DataConfig(family="gamma", n_curves=123), model=ModelConfig(latent_dim=3, hidden=64),
                    train=TrainConfig(epochs=7, lr=1e-3, seed=9))
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_defaults_are_the_worked_example_network():
    m = ModelConfig()
    assert (m.n_points, m.hidden, m.latent_dim) == (100, 256, 2)
    assert DataConfig().family == "beta" and DataConfig().n_curves == 5000


@pytest.mark.parametrize("cls, kw, match", [
    (TrainConfig, {"epochs": 0}, "epochs=0 must be an integer > 0"),
    (TrainConfig, {"lr": -1.0}, "lr=-1.0 must be a number > 0"),
    (TrainConfig, {"beta": -0.1}, "beta=-0.1 must be a number >= 0"),
    (TrainConfig, {"ema": 1.0}, r"ema=1.0 must be in \[0, 1\)"),
    (TrainConfig, {"ema": -0.5}, "ema=-0.5 must be a number >= 0"),
    (TrainConfig, {"adam_beta2": 1.0}, r"adam_beta2=1.0 must be in \(0, 1\)"),
    (TrainConfig, {"threads": -1}, "threads=-1 must be an integer >= 0"),
    (TrainConfig, {"device": "tpu"}, "device='tpu' must be one of auto, cpu, cuda"),
    (ModelConfig, {"latent_dim": 0}, "latent_dim=0 must be an integer > 0"),
    (DataConfig, {"val_fraction": 0.7}, r"val_fraction=0.7 must be in \(0, 0.5\)"),
])
def test_bad_values_are_refused(cls, kw, match):
    with pytest.raises(InputError, match=match):
        cls(**kw)


def test_unknown_keys_are_refused():
    with pytest.raises(InputError, match=r"TrainConfig got unknown keys \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})
