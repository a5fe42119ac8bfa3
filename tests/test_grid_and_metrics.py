import math

import pytest

from steps.lib.errors import InputError
from steps.lib.model.metrics import score
from steps.lib.search.grid import parse_alphas


def test_parse_alphas_keeps_order():
    assert parse_alphas("1, 0.3,0.1 ,") == [1.0, 0.3, 0.1]


@pytest.mark.parametrize("text", ["", "a,b", "1,-1", "0", "1,1", "inf"])
def test_bad_alphas_name_the_parameter(text):
    with pytest.raises(InputError) as error:
        parse_alphas(text)
    assert error.value.param == "alphas"


def test_score_matches_definitions():
    metrics = score([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0], "val")
    assert metrics["val_rmse"] == pytest.approx(1.0)
    assert metrics["val_mae"] == pytest.approx(0.5)
    assert metrics["val_r2"] == pytest.approx(1 - 4 / 5)
    assert score([1, 2], [1, 2], "test")["test_rmse"] == 0
    assert not math.isnan(score([1, 1], [1, 2], "x")["x_r2"])
