"""`fxmatch bench`: every option is checked before the benchmark starts (exit 2, one line), and a run says on stderr
which stage it is at (issue 25, options checked before the work)."""

from __future__ import annotations

import functools
import importlib
import logging
import threading
import time

import pytest

from benchmarks import bench_capture
from benchmarks import cli as bench_cli
from fxmatch.cli import main
from tests.export.helpers import tiny_onnx


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny exported fxmatch model."""
    return tiny_onnx(tmp_path_factory.mktemp("model"))


def _module(name: str):
    """benchmarks.bench_NAME (the test install has every extra: scripts/test.sh)."""
    return importlib.import_module(f"benchmarks.bench_{name}")


@pytest.fixture
def never_runs(monkeypatch):
    """`never_runs(name)`: the benchmark's run() fails the test if it is called (same signature for the CLI)."""

    def patch(name: str):
        module = _module(name)

        @functools.wraps(module.run)
        def refuse(*args, **kwargs):
            raise AssertionError(f"bench {name} started before its options were checked")

        monkeypatch.setattr(module, "run", refuse)
        return module

    return patch


def _refused(capsys, argv) -> str:
    """Run `fxmatch ARGV`: exit 2 and one error line, returned."""
    t0 = time.perf_counter()
    assert main([str(a) for a in argv]) == 2
    assert time.perf_counter() - t0 < 30  # refused at once, not after the work
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "x"])
@pytest.mark.parametrize("name", ["capture", "realtime", "gui"])
def test_seconds_must_be_a_positive_number(name, value, never_runs, capsys):
    never_runs(name)
    line = _refused(capsys, ["bench", name, f"--seconds={value}"])
    assert "--seconds" in line and "> 0" in line


@pytest.mark.parametrize("name", ["capture", "encoder", "realtime", "gui"])
def test_a_missing_or_foreign_model_is_refused_before_the_work(name, never_runs, tmp_path, capsys):
    never_runs(name)
    k = ["--k", "4"] if name == "capture" else []
    assert "nonexist.onnx: no such model file" in _refused(capsys, ["bench", name, "--model", tmp_path / "nonexist.onnx",
                                                                    *k])
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"not a model at all")
    assert "not a loadable ONNX model" in _refused(capsys, ["bench", name, "--model", foreign, *k])


def test_bench_capture_refuses_a_model_it_would_not_use(model, never_runs, capsys):
    never_runs("capture")
    line = _refused(capsys, ["bench", "capture", "--model", model])
    assert "--model is used only with --k" in line


def test_a_missing_checkpoint_is_refused(model, never_runs, tmp_path, capsys):
    never_runs("encoder")
    line = _refused(capsys, ["bench", "encoder", "--model", model, "--checkpoint", tmp_path / "none.pt"])
    assert "none.pt: no such checkpoint file" in line


@pytest.mark.parametrize("name", ["capture", "effects", "training", "encoder"])
def test_an_output_in_a_missing_folder_is_refused_before_the_work(name, never_runs, tmp_path, capsys):
    never_runs(name)
    line = _refused(capsys, ["bench", name, "--quick", "-o", tmp_path / "missingdir" / "out.json"])
    assert "missingdir does not exist" in line
    assert not (tmp_path / "missingdir").exists()


def test_the_output_is_never_the_model(model, never_runs, capsys):
    never_runs("encoder")
    before = model.read_bytes()
    assert "is the input file" in _refused(capsys, ["bench", "encoder", "--model", model, "-o", model])
    assert model.read_bytes() == before


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--seconds", "-1"], ["--n", "0"], ["--k", "x"],
                                  ["--model", "nonexist.onnx", "--k", "4"], ["--model", "MODEL"],
                                  ["-o", "missingdir/out.json"]])
def test_python_m_bench_capture_checks_its_options_first(argv, model, never_runs, tmp_path, monkeypatch, capsys):
    never_runs("capture")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        bench_capture.main([str(model) if a == "MODEL" else a for a in argv])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_run_reports_its_stages_and_a_heartbeat_on_stderr(monkeypatch, tmp_path, capsys):
    module = _module("effects")
    monkeypatch.setattr(bench_cli.Progress, "HEARTBEAT_S", 0.2)
    beat = threading.Event()
    say = bench_cli.Progress.say

    def say_and_note_the_beat(self, text: str) -> None:
        say(self, text)
        if text.startswith("still running"):
            beat.set()

    monkeypatch.setattr(bench_cli.Progress, "say", say_and_note_the_beat)

    def fake_run(quick: bool = False) -> dict:
        log = logging.getLogger("fxmatch.bench.effects")
        log.info("fidelity: Distortion")
        assert beat.wait(30.0)  # silent until the heartbeat speaks (0.2 s; longer on a loaded machine)
        log.info("speed")
        return {"benchmark": "effects"}

    monkeypatch.setattr(module, "run", fake_run)
    out = tmp_path / "effects.json"
    assert main(["bench", "effects", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert '"benchmark": "effects"' in captured.out and out.is_file()
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("bench effects [0 s]: started")
    assert "bench effects [0 s]: fidelity: Distortion" in lines
    assert any(line.endswith("still running (fidelity: Distortion)") for line in lines), lines
    assert lines[-2].endswith(": speed") and lines[-1].endswith(": done"), lines
    # the stages are not printed twice with -v, and the logger is left as it was
    assert logging.getLogger("fxmatch.bench").propagate
