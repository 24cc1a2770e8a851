"""The contract between grader and worker: one set of dataclasses, checked on the way in."""
import json

import pytest

from autograder.runtime.contract import ContractError, IsolationMeasures, IsolationPlan, WorkerConfig


def _config(**changes) -> WorkerConfig:
    values = dict(submission_dir="/tmp/work", module="toy", preload=("numpy",), forbidden_calls=("numpy.linalg.solve",),
                  isolation=IsolationPlan(mode="userns", submission_dir="/tmp/work", limits={"memory_mb": 512}))
    return WorkerConfig(**{**values, **changes})


def test_a_configuration_survives_the_trip_through_json_and_the_zygote():
    config = _config(rank={"rank": 1, "world_size": 2, "port": 29500})
    assert WorkerConfig.from_json(config.to_json()) == config
    forked = dict(json.loads(config.to_json()), fds=[3, 4])  # what the zygote's child hands to worker.run
    assert WorkerConfig.from_dict(forked) == config.with_fds([3, 4])


def test_a_field_the_worker_does_not_know_is_refused_naming_it():
    data = dict(json.loads(_config().to_json()), forbidden_cals=["x"])
    with pytest.raises(ContractError, match="unknown field.*forbidden_cals"):
        WorkerConfig.from_dict(data)
    plan = json.loads(_config().to_json())
    plan["isolation"]["nework"] = "x"
    with pytest.raises(ContractError, match="IsolationPlan: unknown field.*nework"):
        WorkerConfig.from_dict(plan)


def test_a_missing_field_is_refused():
    data = json.loads(_config().to_json())
    del data["module"]
    with pytest.raises(ContractError, match="module"):
        WorkerConfig.from_dict(data)


def test_measures_keep_what_results_record_and_skip_the_rest():
    measures = IsolationMeasures.from_measures({"mode": "root", "seccomp": True, "uid": 2023714, "rank_group": {}})
    assert measures.mode == "root" and measures.seccomp and "uid" not in measures.as_dict()
