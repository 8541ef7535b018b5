"""fxmatch.mono: the searches' one mono conversion and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from fxmatch.errors import FxmatchInputError
from fxmatch.mono import checked_mono


def test_channels_are_averaged_in_the_dtype_asked_for():
    stereo = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    out = checked_mono(stereo, "capture: the dry signal")
    assert out.dtype == np.float64 and out.tolist() == [0.5, 0.5, 0.5]
    assert checked_mono(stereo[0], "match: the take", np.float32).dtype == np.float32


@pytest.mark.parametrize(("audio", "problem"), [(np.zeros((2, 2, 2)), "must be audio shaped"), (np.zeros(0), "must be"),
                                               (np.array([0.0, np.inf]), "contains NaN or infinite samples")])
def test_bad_audio_is_refused_in_one_line_naming_it(audio, problem):
    with pytest.raises(FxmatchInputError, match=f"^match: the reference {problem}"):
        checked_mono(audio, "match: the reference")
