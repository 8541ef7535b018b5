"""fxmatch.threads: OpenMP waits passively unless the user chose otherwise; --threads caps torch, numba and ORT."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from fxmatch.threads import ORT_NO_SPIN_CONFIG, set_cpu_threads


def _policy_after_import(module: str, env_policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    code = f"import os, {module}; print(os.environ.get('OMP_WAIT_POLICY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("module", ["fxmatch", "training", "realtime", "gui", "export", "benchmarks"])
def test_every_package_sets_passive_waiting_before_torch_loads(module: str) -> None:
    assert _policy_after_import(module, None) == "PASSIVE"


def test_a_users_wait_policy_is_kept() -> None:
    assert _policy_after_import("fxmatch", "ACTIVE") == "ACTIVE"


def test_set_cpu_threads_caps_torch_and_numba_in_the_calling_thread() -> None:
    import numba
    import torch

    seen: dict[str, int] = {}

    def worker() -> None:
        set_cpu_threads(1)
        seen["torch"] = torch.get_num_threads()
        seen["numba"] = numba.get_num_threads()

    before = torch.get_num_threads()
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    try:
        assert seen == {"torch": 1, "numba": 1}
    finally:
        torch.set_num_threads(before)


def test_set_cpu_threads_none_leaves_the_defaults() -> None:
    import numba

    before = numba.get_num_threads()
    set_cpu_threads(None)
    assert numba.get_num_threads() == before


def test_onnxruntime_sessions_do_not_spin() -> None:
    from fxmatch.inference import _session_options

    so = _session_options(2)
    for key, value in ORT_NO_SPIN_CONFIG.items():
        assert so.get_session_config_entry(key) == value
    assert so.intra_op_num_threads == 2
