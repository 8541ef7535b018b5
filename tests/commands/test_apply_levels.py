"""`fxmatch apply`: a render over full scale is reported; --normalize and --limit keep it below 0 dBFS; a PCM output
is clipped, never wrapped (issue 25, data safety)."""

import json

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from fxmatch.cli import main
from fxmatch.commands.apply import CEILING_DBFS, LIMIT_HOLD_SECONDS, LIMIT_RAMP_SECONDS, limit

RATE = 48000
CEILING = 10.0 ** (CEILING_DBFS / 20.0)
#: Distortion at full drive then a +12 dB bell: peaks near +11 dBFS with many samples over full scale
HOT_CHAIN = [{"effect": "Distortion", "params": {"drive_db": 40.0}},
             {"effect": "PeakFilter", "params": {"cutoff_frequency_hz": 1000.0, "gain_db": 12.0, "q": 0.7}}]
#: a +12 dB bell alone: linear, so a quiet passage stays quiet
BOOST_CHAIN = [{"effect": "PeakFilter", "params": {"cutoff_frequency_hz": 1000.0, "gain_db": 12.0, "q": 0.7}}]


def _preset(folder, chain, name="p.fxpreset.json"):
    path = folder / name
    path.write_text(json.dumps({"format": "fxmatch-preset", "version": 1, "chain": chain}))
    return path


@pytest.fixture
def take(tmp_path):
    """1 s stereo PCM 24: a 1 kHz tone, quiet (0.05) for the first half, loud (0.5) for the second."""
    t = np.arange(RATE) / RATE
    x = np.sin(2 * np.pi * 1000 * t) * np.where(t < 0.5, 0.05, 0.5)
    path = tmp_path / "take.wav"
    sf.write(path, np.stack([x, 0.8 * x], 1).astype(np.float32), RATE, subtype="PCM_24")
    return path


def _render(chain, take) -> np.ndarray:
    """What pedalboard makes of the take, `[channels, samples]`."""
    x, rate = sf.read(take, dtype="float32", always_2d=True)
    board = pedalboard.Pedalboard([getattr(pedalboard, u["effect"])(**u["params"]) for u in chain])
    return board(np.ascontiguousarray(x.T), rate)


def _apply(capsys, *argv) -> tuple[int, list[str]]:
    rc = main(["apply", *map(str, argv)])
    return rc, capsys.readouterr().err.strip().splitlines()


def test_a_hot_float_wav_is_written_as_rendered_with_one_warning(tmp_path, take, capsys):
    out = tmp_path / "o.wav"
    rc, err = _apply(capsys, _preset(tmp_path, HOT_CHAIN), take, out)
    assert rc == 0, err
    rendered = _render(HOT_CHAIN, take)
    peak_db = 20 * np.log10(np.abs(rendered).max())
    share = 100 * np.mean(np.abs(rendered) > 1.0)
    assert peak_db > 6 and share > 10
    warnings = [line for line in err if "warning" in line]
    assert len(warnings) == 1 and len(err) == 2, err
    assert f"peaks at +{peak_db:.1f} dBFS" in warnings[0] and f"{share:.0f} % of samples" in warnings[0]
    assert "--normalize" in warnings[0] and "--limit" in warnings[0]
    written, _ = sf.read(out, dtype="float32", always_2d=True)
    assert sf.info(out).subtype == "FLOAT"
    np.testing.assert_allclose(written.T, rendered, atol=1e-6)  # a float WAV keeps what the chain made


def test_a_pcm_output_is_clipped_never_wrapped_and_says_so(tmp_path, take, capsys):
    out = tmp_path / "o.flac"
    rc, err = _apply(capsys, _preset(tmp_path, HOT_CHAIN), take, out)
    assert rc == 0, err
    assert any("warning" in line and "clipped to full scale" in line and "24-bit FLAC" in line for line in err), err
    written, _ = sf.read(out, dtype="float32", always_2d=True)
    rendered = _render(HOT_CHAIN, take)
    assert sf.info(out).subtype == "PCM_24"
    np.testing.assert_allclose(written.T, np.clip(rendered, -1.0, 1.0), atol=1e-5)
    hot = rendered > 1.0  # a wrapped sample would turn up near -1
    assert hot.any() and (written.T[hot] > 0.999).all() and (written.T[rendered < -1.0] < -0.999).all()


def test_a_render_within_full_scale_gets_no_warning(tmp_path, take, capsys):
    rc, err = _apply(capsys, _preset(tmp_path, [{"effect": "Distortion", "params": {"drive_db": 20.0}}]), take,
                     tmp_path / "o.flac")
    assert rc == 0 and len(err) == 1 and err[0].startswith("wrote "), err


def test_normalize_scales_the_render_to_peak_at_minus_1_dbfs(tmp_path, take, capsys):
    out = tmp_path / "o.wav"
    rc, err = _apply(capsys, _preset(tmp_path, HOT_CHAIN), take, out, "--normalize")
    assert rc == 0 and len(err) == 1 and "normalized from +" in err[0] and "-1.0 dBFS" in err[0], err
    written, _ = sf.read(out, dtype="float32", always_2d=True)
    rendered = _render(HOT_CHAIN, take)
    assert np.abs(written).max() == pytest.approx(CEILING, rel=1e-5)
    np.testing.assert_allclose(written.T, rendered * (CEILING / np.abs(rendered).max()), atol=1e-6)
    # a quiet render is raised to the same peak
    rc, err = _apply(capsys, _preset(tmp_path, [], "none.fxpreset.json"), take, out, "--normalize")
    assert rc == 0 and "normalized from -6.0 to -1.0 dBFS" in err[0], err
    assert np.abs(sf.read(out, dtype="float32")[0]).max() == pytest.approx(CEILING, rel=1e-5)


def test_limit_keeps_the_render_below_minus_1_dbfs_and_leaves_quiet_passages_alone(tmp_path, take, capsys):
    out = tmp_path / "o.flac"  # 24-bit: nothing left to clip
    rc, err = _apply(capsys, _preset(tmp_path, BOOST_CHAIN), take, out, "--limit")
    assert rc == 0 and len(err) == 1 and "limited from +" in err[0], err
    written, _ = sf.read(out, dtype="float32", always_2d=True)
    written = written.T
    rendered = _render(BOOST_CHAIN, take)
    assert np.abs(rendered).max() > 1.5 and np.abs(written).max() <= CEILING + 1e-6
    # the quiet half, up to the limiter's look-ahead before the loud one, is exactly the render
    quiet = int((0.5 - 2 * LIMIT_RAMP_SECONDS) * RATE)
    np.testing.assert_allclose(written[:, :quiet], rendered[:, :quiet], atol=1e-6)
    # the loud half is turned down by one smooth gain, not clipped: the same gain on both channels, ramping by at
    # most a ramp's worth per sample, and the tone's shape kept (no flattened tops)
    loud = np.flatnonzero(np.abs(rendered[0]) > 0.05)  # away from the zero crossings
    gain = written[:, loud] / rendered[:, loud]
    np.testing.assert_allclose(gain[0], gain[1], atol=1e-4)
    assert gain.min() < 0.5
    assert (np.abs(np.diff(gain[0])) / np.diff(loud)).max() < 1.1 / (LIMIT_RAMP_SECONDS * RATE)
    # a sine's tops touch the ceiling (about 1.4 % of the samples here); a clipper would hold it for about a third
    assert np.mean(np.abs(written[0]) > 0.999 * CEILING) < 0.03


def test_the_limiter_turns_down_only_around_peaks_and_never_over_the_ceiling():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, RATE))).astype(np.float32)
    x[:, RATE // 2] = 4.0  # one click at +12 dBFS
    y, gain = limit(x, RATE)
    assert np.abs(y).max() <= CEILING + 1e-7
    assert gain[RATE // 2] == pytest.approx(CEILING / 4.0, rel=1e-5)
    ramp, hold = round(LIMIT_RAMP_SECONDS * RATE), round(LIMIT_HOLD_SECONDS * RATE)
    touched = np.flatnonzero(gain < 1.0)
    assert touched[0] >= RATE // 2 - ramp and touched[-1] <= RATE // 2 + hold + ramp  # ramp, hold, ramp back
    assert np.abs(np.diff(gain)).max() <= (1.0 - CEILING / 4.0) / ramp + 1e-6
    np.testing.assert_array_equal(y[:, gain == 1.0], x[:, gain == 1.0])


def test_normalize_and_limit_together_are_refused(tmp_path, take, capsys):
    rc, err = _apply(capsys, _preset(tmp_path, HOT_CHAIN), take, tmp_path / "o.wav", "--normalize", "--limit")
    assert rc == 2 and "not allowed with" in err[-1]
    assert not (tmp_path / "o.wav").exists()
