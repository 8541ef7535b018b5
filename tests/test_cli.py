import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from fxmatch.cli import main


def _preset(tmp_path):
    p = tmp_path / "p.fxpreset.json"
    p.write_text(json.dumps({"format": "fxmatch-preset", "version": 1,
                             "chain": [{"effect": "Distortion", "params": {"drive_db": 20.0}}]}))
    return p


def test_apply_renders_through_pedalboard(tmp_path):
    import pedalboard

    x = (np.random.default_rng(0).standard_normal((4800, 2)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, 48000, subtype="PCM_24")
    assert main(["apply", str(_preset(tmp_path)), str(tmp_path / "in.wav"), str(tmp_path / "out.wav")]) == 0
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    x24, _ = sf.read(tmp_path / "in.wav", dtype="float32")
    assert rate == 48000
    np.testing.assert_allclose(y.T, pedalboard.Distortion(drive_db=20.0)(x24.T.copy(), 48000), atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage", b"\x00" * 100])
def test_apply_bad_audio_exits_2_with_one_line_and_writes_nothing(tmp_path, content, capsys):
    (tmp_path / "in.wav").write_bytes(content)
    out = tmp_path / "out.wav"
    assert main(["apply", str(_preset(tmp_path)), str(tmp_path / "in.wav"), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fxmatch: error:")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_apply_nan_audio_exits_2(tmp_path, capsys):
    x = np.zeros((100, 1), dtype=np.float32)
    x[10] = np.nan
    sf.write(tmp_path / "in.wav", x, 44100, subtype="FLOAT")
    assert main(["apply", str(_preset(tmp_path)), str(tmp_path / "in.wav"), str(tmp_path / "o.wav")]) == 2
    assert "NaN" in capsys.readouterr().err


def test_console_script_usage_error_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "fxmatch.cli", "nonsense"], check=False, capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_building_the_parser_does_not_import_torch():
    # `fxmatch estimate`, `live` and `app` must not pay for torch (hundreds of MB, seconds) just to parse options.
    code = "import sys, fxmatch.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from fxmatch.audio_io import write_text_atomic

    write_text_atomic(tmp_path / "a.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_help_works_without_the_editable_install_hooks():
    # A non-editable `pip install .` has no .pth import hook that happens to load importlib.util; `python -S`
    # skips every .pth, and the repository and site-packages go on sys.path by hand.
    import sysconfig
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    code = (f"import sys; sys.path[:0] = [{repo!r}, {sysconfig.get_paths()['purelib']!r}]; "
            "assert 'importlib.util' not in sys.modules; from fxmatch.cli import main; sys.exit(main(['--help']))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "apply" in proc.stdout and "unexpected failure" not in proc.stderr


@pytest.mark.parametrize(("module", "argv", "package", "extra"), [
    ("yaml", ["train", "configs/tiny.yaml"], "pyyaml", "train"),
    ("onnx", ["export", "missing.pt", "out.onnx"], "onnx", "train"),
    ("tqdm", ["evaluate", "models/fxmatch-default.onnx", "heldout:2"], "tqdm", "train"),
    ("sounddevice", ["live", "--list-devices"], "sounddevice", "live"),
    ("PyQt6", ["app", "--screenshot", "shots"], "PyQt6", "app"),
])
def test_missing_optional_extra_exits_2_naming_what_to_install(tmp_path, module, argv, package, extra):
    # The module is hidden for real: `None` in sys.modules makes every `import` of it fail as if not installed.
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    argv = [str(repo / a) if a.startswith(("configs/", "models/")) else a for a in argv]
    code = (f"import sys; sys.modules[{module!r}] = None; from fxmatch.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, check=False, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"fxmatch: error: fxmatch {argv[0]} needs {package}, which is not installed")
    assert f'pip install "fxmatch[{extra}]"' in lines[0]
    assert not list(tmp_path.iterdir())  # nothing was started, nothing written


def test_missing_module_outside_the_extras_stays_an_unexpected_failure():
    from fxmatch.cli import missing_extra_message

    assert missing_extra_message(ModuleNotFoundError("No module named 'scipy'", name="scipy"), "estimate") is None
    message = missing_extra_message(ModuleNotFoundError("x", name="PyQt6.QtWidgets"), "app")
    assert message is not None and 'pip install "fxmatch[app]"' in message


def test_bench_capture_passes_k_n_and_seconds_through(tmp_path, capsys):
    out = tmp_path / "capture.json"
    assert main(["bench", "capture", "--k", "1,2", "--n", "1", "--seconds", "1.5", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert [c["k"] for c in result["curve"]] == [1, 2] and [c["examples"] for c in result["curve"]] == [1, 1]
    assert result["model"].startswith("fxmatch-default")


@pytest.mark.parametrize(("argv", "needle"), [
    (["bench", "capture", "--k", "4,x"], "--k: expected comma-separated whole numbers >= 1"),
    (["bench", "capture", "--k", "0"], "--k: expected comma-separated whole numbers >= 1"),
    (["bench", "capture", "--n", "0"], "--n: expected a whole number >= 1"),
    (["bench", "capture", "--set", "no-such-folder"], "--set no-such-folder: not a folder"),
    (["bench", "effects", "--k", "4"], "benchmark 'effects' takes no --k"),
    (["bench", "effects", "--set", "."], "benchmark 'effects' takes no --set"),
])
def test_bench_bad_capture_options_exit_2_in_one_line(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
