"""Thread discipline: a block on n threads (torch and BLAS) restores the count after, and a
study's ``threads:`` setting is what its runs record."""

import pytest
import torch
from threadpoolctl import threadpool_info

from safeadapt.threads import one_thread, use_threads


def test_one_thread_inside_and_the_count_restored_after():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
    with use_threads(None):
        assert torch.get_num_threads() == before


def test_a_studys_threads_setting_reaches_its_runs(tmp_path, feature_cache):
    import copy

    from safeadapt.errors import InvalidConfig
    from safeadapt.study import StudyConfig, run_study
    from tests.study.conftest import TINY_STUDY

    before = torch.get_num_threads()
    tiny_study = {**copy.deepcopy(TINY_STUDY), "output": str(tmp_path / "out")}
    tiny_study.update({"protocols": {"lp": {}}, "seeds": [0], "safety": False, "threads": 1})
    tiny_study["preflight"] = {"checks": []}
    result = run_study(StudyConfig.from_dict(tiny_study), cache=feature_cache,
                       show_progress=False, log=lambda m: None, report=False)  # fmt: skip
    assert result.runs[0].environment["torch_threads"] == 1
    assert torch.get_num_threads() == before
    with pytest.raises(InvalidConfig, match="'threads' must be an integer from 1 to 1024"):
        StudyConfig.from_dict({**tiny_study, "threads": 0})
