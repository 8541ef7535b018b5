"""`fxmatch bench capture` / `python -m benchmarks.bench_capture`: the k curve on held-out pedalboard renders."""

from __future__ import annotations

import json

from benchmarks import bench_capture


def test_k_list_gives_one_run_per_k_on_the_same_examples(tmp_path, capsys):
    out = tmp_path / "capture.json"
    assert bench_capture.main(["--k", "1,2", "--n", "1", "--seconds", "1.5", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert [c["k"] for c in result["curve"]] == [1, 2] and result["model"].startswith("fxmatch-default")
    first, second = (r["per_example"][0] for r in result["runs"])
    assert first["chain"] == second["chain"] and first["index"] == second["index"] == 0
    assert first["chains"] <= 8 and first["chains"] <= second["chains"] <= 15  # sub-chains of the likeliest 1, 2
    # (the second likeliest chain's sub-chains may all be the first's: no more chains, but never fewer)
    assert all(0 <= c["exact_accuracy"] <= 1 and c["seconds_per_file_median"] > 0 for c in result["curve"])
    # the run records the search's settings: the stages' windows and the choice rule
    from fxmatch.capture import SearchSettings

    run = result["runs"][0]
    assert [s["seconds"] for s in run["stages"]] == [s.seconds for s in SearchSettings().stages]
    assert run["tolerance"] == SearchSettings().tolerance and run["prior_weight"] == SearchSettings().prior_weight
    assert run["search_seed"] == 0
