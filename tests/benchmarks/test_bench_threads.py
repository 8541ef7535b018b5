"""benchmarks.bench_threads: the commands it times exist and run as the user types them (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_threads
from fxmatch.cli import build_parser


def test_every_timed_command_parses_and_names_files_that_exist(tmp_path: Path):
    commands = bench_threads.timed_commands(tmp_path)
    assert set(commands) == {"demo --refine 40", "capture", "estimate --dry"}
    parser, _ = build_parser()
    for argv in commands.values():
        args = parser.parse_args(argv)  # a renamed option would fail here, not after minutes of benchmarking
        for value in vars(args).values():
            if isinstance(value, str) and value.endswith(".flac"):
                assert Path(value).is_file(), value


def test_the_environment_keeps_or_sets_the_wait_policy(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert "OMP_WAIT_POLICY" not in bench_threads.policy_env(None)  # fxmatch sets its own default
    assert bench_threads.policy_env("ACTIVE")["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_failing_command_is_reported_with_its_last_line(tmp_path: Path):
    import pytest

    with pytest.raises(RuntimeError, match="failed"):
        bench_threads.time_once(["estimate", str(tmp_path / "missing.wav")], bench_threads.policy_env(None))
