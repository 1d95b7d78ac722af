import numpy as np
from torch import nn

from safeadapt.metrics.cost import CostMeter, trainable_parameters


def test_trainable_parameters_count_only_trainable():
    net = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    net[0].weight.requires_grad_(False)
    assert trainable_parameters(net) == 5 + 5 * 2 + 2


def test_cost_meter_sees_a_large_allocation():
    with CostMeter() as base:
        pass
    with CostMeter() as m:
        block = np.ones(200 * 2**20 // 8)  # 200 MB
        block.sum()
        import time

        time.sleep(0.1)
    res = m.result(n_examples=10)
    assert res["peak_rss_mb"] > base.result()["peak_rss_mb"] + 100
    assert res["seconds"] > 0 and res["examples_per_s"] > 0
