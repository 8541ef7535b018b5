import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
from onnx import TensorProto, helper

from fxmatch import inference, testsignals
from fxmatch.effects.spec import EffectSpec, ParamSpec
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import (
    EstimatorSession,
    ModelInfo,
    WindowAggregator,
    iter_windows,
    rank_chains,
    softmax,
)
from fxmatch.vocabulary import ChainVocabulary
from tests.export.helpers import SAMPLE_RATE, tiny_onnx


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("model"), favour=1)


def test_inference_imports_neither_torch_nor_training():
    code = "import sys, fxmatch.inference; print(sorted(m for m in ('torch', 'training') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------------- providers


def test_asking_for_cuda_on_a_cpu_machine_falls_back_to_cpu_quietly(model, capfd):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider; see the gpu test")
    session = EstimatorSession(model, providers="cuda")
    assert session.provider == "CPUExecutionProvider"
    assert "no CUDA provider" in session.why_not_cuda
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_cuda_that_fails_to_load_falls_back_to_cpu_without_error_spew(model, capfd, monkeypatch):
    """onnxruntime-gpu without CUDA libraries: the provider is listed but does not come up."""
    real = ort.get_available_providers()
    monkeypatch.setattr(inference.ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", *[p for p in real if p != "CUDAExecutionProvider"]])
    session = EstimatorSession(model, providers="auto")
    if "CUDAExecutionProvider" not in real:
        assert session.provider == "CPUExecutionProvider"
    x = testsignals.make("pluck", SAMPLE_RATE, 0.5)
    probs, _ = session.estimate_windows(x)
    assert probs.shape == (1, 2)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


@pytest.mark.parametrize("threads", [1, 3])
def test_cpu_provider_and_thread_count(model, threads):
    """`threads=N`: N intra-op threads (the caller's and N - 1 that onnxruntime starts), one inter-op thread."""
    tasks = Path("/proc/self/task")
    before = len(list(tasks.iterdir())) if tasks.is_dir() else None
    session = EstimatorSession(model, providers="cpu", threads=threads)
    assert session.session.get_providers() == ["CPUExecutionProvider"]
    options = session.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (threads, 1)
    if before is not None:  # Linux: count the threads the session really started
        assert len(list(tasks.iterdir())) - before == threads - 1


def test_unknown_provider_is_an_input_error(model):
    with pytest.raises(FxmatchInputError, match="unknown execution provider"):
        EstimatorSession(model, providers="tpu")


@pytest.mark.gpu
def test_auto_picks_cuda_when_it_really_works(model):
    session = EstimatorSession(model, providers="auto")
    assert session.provider == "CUDAExecutionProvider"


# ----------------------------------------------------------------------------------------------------- decoding


def _two_effect_info():
    vocab = ChainVocabulary(
        effects=(
            EffectSpec("Distortion", (ParamSpec("drive_db", "dB", 5.0, 40.0),)),
            EffectSpec("PeakFilter", (ParamSpec("cutoff_frequency_hz", "Hz", 200.0, 6000.0, "log"),
                                      ParamSpec("gain_db", "dB", -12.0, 12.0),
                                      ParamSpec("q", "", 0.5, 4.0, "log"))),
        ),
        max_length=2,
    )
    meta = {"fxmatch_format": {"format": "fxmatch-onnx-model", "version": 1}, "sample_rate": 16000,
            "analysis_window": {"samples": 8000}, "vocabulary": vocab.to_dict(),
            "model": {"name": "m", "version": "2"}}
    return vocab, ModelInfo.from_metadata({k: json.dumps(v) for k, v in meta.items()})


def test_decoding_ranks_by_probability_and_denormalises_like_the_vocabulary():
    vocab, info = _two_effect_info()
    assert info.chains == vocab.chains and info.hop_samples == 4000 and info.label == "m-v2"
    rng = np.random.default_rng(0)
    logits = np.array([0.1, 2.0, -1.0, 0.5])
    params = rng.uniform(-0.2, 1.2, size=(4, vocab.n_params))  # out-of-range values are clipped
    ranked = rank_chains(info, softmax(logits), params)
    assert [r.chain_index for r in ranked] == [1, 3, 0, 2]
    assert [r.chain for r in ranked] == [vocab.chains[k] for k in (1, 3, 0, 2)]
    assert sum(r.probability for r in ranked) == pytest.approx(1.0)
    assert ranked[0].probability == pytest.approx(np.exp(2.0) / np.exp(logits).sum())
    for r in ranked:
        expected = vocab.decode(r.chain_index, params[r.chain_index])
        assert [name for name, _ in r.params] == [name for name, _ in expected]
        for (_, got), (_, want) in zip(r.params, expected):
            assert got == pytest.approx(want, rel=1e-9)
    assert len(rank_chains(info, softmax(logits), params, top=2)) == 2


def test_log_scaled_param_denormalises_geometrically():
    _, info = _two_effect_info()
    q = info.effect("PeakFilter").params[2]
    assert q.denormalise(0.0) == pytest.approx(0.5) and q.denormalise(1.0) == pytest.approx(4.0)
    assert q.denormalise(0.5) == pytest.approx(np.sqrt(0.5 * 4.0))
    assert q.normalise(q.denormalise(0.3)) == pytest.approx(0.3)


def test_aggregation_averages_probabilities_and_weights_params_by_probability():
    agg = WindowAggregator(n_chains=2, n_params=1)
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    params = np.array([[[0.1], [0.9]], [[0.5], [0.5]], [[0.9], [0.1]]])
    agg.add(probs[:2], params[:2])
    agg.add(probs[2:], params[2:])
    mean, weighted, votes = agg.result()
    np.testing.assert_allclose(mean, [1.7 / 3, 1.3 / 3])
    np.testing.assert_allclose(weighted[0, 0], (0.8 * 0.1 + 0.6 * 0.5 + 0.3 * 0.9) / 1.7)
    np.testing.assert_allclose(weighted[1, 0], (0.2 * 0.9 + 0.4 * 0.5 + 0.7 * 0.1) / 1.3)
    np.testing.assert_allclose(votes, [2 / 3, 1 / 3])


# ---------------------------------------------------------------------------------------------------- windowing


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 1499, 1500, 4321, 10000])
@pytest.mark.parametrize("block", [7, 250, 1000, 100000])
def test_windows_are_the_same_whatever_the_block_size(n, block):
    x = np.arange(1, n + 1, dtype=np.float32)
    whole = list(iter_windows([x], 1000, 500))
    streamed = list(iter_windows((x[i : i + block] for i in range(0, n, block)), 1000, 500))
    assert len(whole) == len(streamed)
    for a, b in zip(whole, streamed):
        np.testing.assert_array_equal(a, b)
    assert all(w.shape == (1000,) for w in whole)
    if n < 1000:
        assert len(whole) == 1 and whole[0][n - 1] == n and whole[0][n:].sum() == 0
    else:
        assert whole[0][0] == 1
        assert whole[-1][-1] == n or n - (whole[-1][-1]) < 250  # the tail is covered


def test_end_aligned_tail_window():
    x = np.arange(1, 1801, dtype=np.float32)
    windows = list(iter_windows([x], 1000, 500))
    assert [w[0] for w in windows] == [1, 501, 801]  # two regular windows, then one aligned to the end


# ------------------------------------------------------------------------------------------------ whole estimates


def test_estimate_file_streams_resamples_and_matches_in_memory(model, tmp_path):
    x = testsignals.make("chord", 48000, 2.3, seed=2, channels=2)
    sf.write(tmp_path / "t.wav", x.T, 48000, subtype="FLOAT")
    session = EstimatorSession(model)
    from_file = session.estimate_file(tmp_path / "t.wav", block_seconds=0.3)
    in_memory = session.estimate_array(x, 48000)
    assert from_file.n_windows == in_memory.n_windows == 8  # 0.5 s windows every 0.25 s; 0.05 s tail: no extra
    assert from_file.best.chain == ("Distortion",) and from_file.consistency == 1.0
    assert from_file.best.probability == pytest.approx(in_memory.best.probability, abs=1e-4)
    assert from_file.best.params[0][1]["drive_db"] == pytest.approx(in_memory.best.params[0][1]["drive_db"], abs=1e-3)
    assert (from_file.sample_rate, from_file.channels) == (48000, 2)
    assert from_file.duration_s == pytest.approx(2.3)


def test_silent_windows_are_skipped_and_silence_only_is_an_error(model, tmp_path):
    session = EstimatorSession(model)
    x = np.concatenate([np.zeros(SAMPLE_RATE * 2, np.float32), testsignals.make("pluck", SAMPLE_RATE, 1.0)[0]])
    result = session.estimate_array(x, SAMPLE_RATE)
    assert result.n_silent >= 5 and result.n_windows >= 3
    with pytest.raises(FxmatchInputError, match="silent"):
        session.estimate_array(np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(FxmatchInputError, match="NaN"):
        session.estimate_array(np.full(100, np.nan), SAMPLE_RATE)


def test_long_file_is_streamed_with_bounded_memory(model, tmp_path):
    rng = np.random.default_rng(0)
    seconds, rate = 40, 48000
    with sf.SoundFile(tmp_path / "long.wav", "w", rate, 2, subtype="FLOAT") as f:
        for _ in range(seconds):
            f.write((rng.standard_normal((rate, 2)) * 0.1).astype(np.float32))
    file_mb = seconds * rate * 2 * 4 / 1e6  # 15 MB of samples
    session = EstimatorSession(model, batch_size=4)
    tracemalloc.start()
    try:
        result = session.estimate_file(tmp_path / "long.wav", block_seconds=1.0)
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert result.n_windows == 4 * seconds - 1
    assert peak_mb < file_mb / 4, peak_mb


# ------------------------------------------------------------------------------------------------- bad models


def _foreign_onnx(path, metadata=None, input_name="audio"):
    node = helper.make_node("Identity", [input_name], ["chain_logits"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("chain_logits", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8  # newer onnx writes an IR version that the installed onnxruntime may not read yet
    for k, v in (metadata or {}).items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, str(path))
    return path


def _model_metadata(model):
    return {p.key: p.value for p in onnx.load(str(model)).metadata_props}


def test_bad_model_files_are_input_errors_with_one_line(model, tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07garbage" * 100)
    truncated = model.read_bytes()[:2000]
    (tmp_path / "truncated.onnx").write_bytes(truncated)
    meta = _model_metadata(model)
    no_vocab = {k: v for k, v in meta.items() if k != "vocabulary"}
    bad_json = {**meta, "vocabulary": "{not json"}
    wrong_version = {**meta, "fxmatch_format": json.dumps({"format": "fxmatch-onnx-model", "version": 99})}
    cases = {
        "missing.onnx": "no such model file",
        "empty.onnx": "empty model file",
        "garbage.onnx": "not a loadable ONNX model",
        "truncated.onnx": "not a loadable ONNX model",
        _foreign_onnx(tmp_path / "foreign.onnx").name: "not an fxmatch model",
        _foreign_onnx(tmp_path / "novocab.onnx", no_vocab).name: "lacks vocabulary",
        _foreign_onnx(tmp_path / "badjson.onnx", bad_json).name: "'vocabulary' is not valid JSON",
        _foreign_onnx(tmp_path / "version.onnx", wrong_version).name: "version 99 is not supported",
        _foreign_onnx(tmp_path / "signature.onnx", meta, input_name="x").name: "expected one input named 'audio'",
    }
    for name, message in cases.items():
        with pytest.raises(FxmatchInputError) as info:
            EstimatorSession(tmp_path / name)
        text = str(info.value)
        assert message in text and "\n" not in text, (name, text)


# ------------------------------------------------------------------------------------ output shapes vs metadata


def _wrong_shape_onnx(path, metadata, n_chains=3, n_params=1):
    """A model with the right input and output names whose outputs have `n_chains` chains and `n_params` params."""
    nodes = [
        helper.make_node("ReduceMean", ["audio"], ["m"], axes=[1], keepdims=1),  # [batch, 1]
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [2],
                                                                             [1, n_chains])),
        helper.make_node("Expand", ["m", "shape"], ["chain_logits"]),  # [batch, n_chains]
        helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("a", TensorProto.INT64, [1], [2])),
        helper.make_node("Unsqueeze", ["chain_logits", "axes"], ["u"]),  # [batch, n_chains, 1]
        helper.make_node("Constant", [], ["pshape"], value=helper.make_tensor("p", TensorProto.INT64, [3],
                                                                              [1, 1, n_params])),
        helper.make_node("Expand", ["u", "pshape"], ["params"]),  # [batch, n_chains, n_params]
    ]
    dims = (["batch", "c"], ["batch", "c", "p"])  # symbolic: onnxruntime infers the real ones
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("chain_logits", TensorProto.FLOAT, dims[0]),
         helper.make_tensor_value_info("params", TensorProto.FLOAT, dims[1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in metadata.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, str(path))
    return path


def test_a_model_whose_output_shapes_do_not_fit_its_metadata_is_refused_at_load(model, tmp_path):
    meta = _model_metadata(model)  # 2 chains, 1 param
    for n_chains, n_params, name in ((3, 1, "chain_logits"), (2, 4, "params")):
        bad = _wrong_shape_onnx(tmp_path / f"bad{n_chains}{n_params}.onnx", meta, n_chains, n_params)
        with pytest.raises(FxmatchInputError) as info:
            EstimatorSession(bad)
        text = str(info.value)
        assert f"output {name} has shape [batch, {n_chains}" in text and "do not match" in text, text
        assert "\n" not in text
    fits = _wrong_shape_onnx(tmp_path / "fits.onnx", meta, 2, 1)
    probs, params = EstimatorSession(fits).estimate_windows(np.ones((3, 800), np.float32))
    assert probs.shape == (3, 2) and params.shape == (3, 2, 1)


def test_output_shapes_are_checked_on_every_run_too(model, monkeypatch):
    """A graph whose declared shapes say nothing (or lie) is caught by its first outputs."""
    session = EstimatorSession(model)
    monkeypatch.setattr(session, "run", lambda a: (np.zeros((a.shape[0], 3), np.float32),
                                                    np.zeros((a.shape[0], 3, 1), np.float32)))
    with pytest.raises(FxmatchInputError, match=r"output chain_logits has shape \[batch, 3\] but its metadata needs "
                                                r"\[batch, n_chains\] = \[batch, 2\]"):
        session.estimate_array(testsignals.make("pluck", SAMPLE_RATE, 1.0), SAMPLE_RATE)


# ---------------------------------------------------------------------------------------- short and cut inputs


@pytest.mark.parametrize("samples", [1, 160, int(0.24 * SAMPLE_RATE)])  # one sample, 10 ms, just under 0.25 s
def test_input_below_the_minimum_is_too_short_to_analyse(model, tmp_path, samples):
    session = EstimatorSession(model)
    x = testsignals.make("noise", SAMPLE_RATE, 1.0)[0][:samples]
    with pytest.raises(FxmatchInputError, match=r"too short to analyse \(.*; the minimum is 0.25 s"):
        session.estimate_array(x, SAMPLE_RATE)
    sf.write(tmp_path / "short.wav", x, SAMPLE_RATE)
    with pytest.raises(FxmatchInputError, match="too short to analyse"):
        session.estimate_file(tmp_path / "short.wav")


def test_input_shorter_than_a_window_is_estimated_with_a_warning(model):
    session = EstimatorSession(model)
    short = session.estimate_array(testsignals.make("pluck", SAMPLE_RATE, 0.3), SAMPLE_RATE, source="s.wav")
    assert short.n_windows == 1 and len(short.warnings) == 1
    assert "s.wav: only 0.30 s of audio, shorter than the model's 0.5 s analysis window" in short.warnings[0]
    assert session.estimate_array(testsignals.make("pluck", SAMPLE_RATE, 0.5), SAMPLE_RATE).warnings == []


def test_a_wav_cut_short_is_read_with_a_warning(model, tmp_path):
    x = testsignals.make("chord", SAMPLE_RATE, 2.0)[0]
    sf.write(tmp_path / "full.wav", x, SAMPLE_RATE, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 2 * SAMPLE_RATE])  # the header still announces 2 s
    assert inference.truncated_wav(tmp_path / "full.wav") is None
    assert inference.truncated_wav(tmp_path / "cut.wav") == (4 * SAMPLE_RATE, 2 * SAMPLE_RATE)
    session = EstimatorSession(model)
    assert session.estimate_file(tmp_path / "full.wav").warnings == []
    cut = session.estimate_file(tmp_path / "cut.wav")
    assert cut.duration_s == pytest.approx(1.0) and len(cut.warnings) == 1
    assert "header announces 2.00 s of audio but the file holds only 1.00 s" in cut.warnings[0]


def test_wav_sizes_left_open_by_streaming_writers_are_not_called_cut(tmp_path):
    x = (np.random.default_rng(0).standard_normal(1000) * 0.1).astype(np.float32)
    sf.write(tmp_path / "s.wav", x, SAMPLE_RATE, subtype="PCM_16")
    data = bytearray((tmp_path / "s.wav").read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    (tmp_path / "open.wav").write_bytes(bytes(data))
    assert inference.truncated_wav(tmp_path / "open.wav") is None
    (tmp_path / "t.flac").write_bytes(b"fLaC" + bytes(100))
    assert inference.truncated_wav(tmp_path / "t.flac") is None


# ------------------------------------------------------------------------------------------- how sure, in words


def _estimate(*probs, chains=None, calibrated=True):
    _, info = _two_effect_info()
    p = np.zeros(info.n_chains)
    p[: len(probs)] = probs
    ranked = rank_chains(info, p, np.full((info.n_chains, info.n_params), 0.5))
    return inference.Estimate(ranked=ranked, consistency=1.0, n_windows=4, n_silent=0, model="m-v2", provider="cpu",
                              n_agree=4, calibrated=calibrated)


@pytest.mark.parametrize(("probs", "level", "text"), [
    ((0.05, 0.95), "sure", "sure (p = 0.95)"),
    ((0.82, 0.1, 0.08), "fairly sure", "fairly sure (p = 0.82)"),
    ((0.6, 0.25, 0.15), "not very sure", "not very sure (p = 0.60)"),
    ((0.55, 0.41, 0.04), "unsure", "unsure: alternatives are close (p = 0.55, next 0.41)"),
    ((0.34, 0.3, 0.2, 0.16), "unsure", "unsure: alternatives are close (p = 0.34, next 0.30)"),
    ((0.45, 0.2, 0.2, 0.15), "unsure", "unsure (p = 0.45: more likely wrong than right)"),
])
def test_confidence_is_put_in_words(probs, level, text):
    conf = inference.describe_confidence(_estimate(*probs))
    assert (conf.level, conf.text) == (level, text)
    assert conf.unsure == (level == "unsure")
    assert (conf.warning is not None) == conf.unsure
    assert conf.probability == pytest.approx(max(probs))


def test_an_unsure_warning_names_the_close_alternatives():
    conf = inference.describe_confidence(_estimate(0.34, 0.3, 0.2, 0.16))
    assert conf.close == (("Distortion", 0.3), ("PeakFilter", 0.2), ("Distortion -> PeakFilter", 0.16))
    assert conf.warning == ("unsure estimate (p = 0.34): Distortion, PeakFilter, Distortion -> PeakFilter are nearly "
                            "as likely; listen before you use it")


def test_confidence_words_need_no_estimate_object():
    """The real-time engine and the app describe their own aggregates with the same words."""
    conf = inference.describe(0.62, [("Reverb", 0.5), ("no effect", 0.1)], calibrated=False)
    assert conf.unsure and not conf.calibrated and conf.margin == pytest.approx(0.12)
    assert conf.warning == "unsure estimate (p = 0.62): Reverb is nearly as likely; listen before you use it"
    assert inference.describe(0.93).text == "sure (p = 0.93)"


def test_no_effect_is_a_chain_like_any_other():
    est = _estimate(0.9, 0.1)
    assert est.best.chain == () and est.best.no_effect and est.best.label == "no effect"
    assert not est.alternatives[0].no_effect


def test_rms_dbfs_of_known_levels():
    """The one RMS-to-dBFS helper (fxmatch.audio_io, re-exported here): a full-scale square wave is 0 dBFS, a
    sine of amplitude 1 is -3.01 dBFS, halving is -6.02 dB, silence and nothing are -inf."""
    t = np.arange(48000) / 48000
    square = np.sign(np.sin(2 * np.pi * 100 * t) + 1e-9).astype(np.float32)
    sine = np.sin(2 * np.pi * 100 * t).astype(np.float32)
    assert inference.rms_dbfs(square) == pytest.approx(0.0, abs=1e-6)
    assert inference.rms_dbfs(sine) == pytest.approx(-3.0103, abs=1e-3)
    assert inference.rms_dbfs(0.5 * sine[None, :]) == pytest.approx(-3.0103 - 6.0206, abs=1e-3)
    assert inference.rms_dbfs(np.zeros(10)) == float("-inf") and inference.rms_dbfs(np.zeros(0)) == float("-inf")


def _with_decision(info, decision):
    meta = {k: json.dumps(v) for k, v in info.metadata.items()}
    meta[inference.META_DECISION] = json.dumps(decision)
    return ModelInfo.from_metadata(meta)


def test_presence_rule_names_only_effects_likely_heard():
    vocab, info = _two_effect_info()
    chains = list(vocab.chains)
    both, dist, peak, none = (chains.index(c) for c in (("Distortion", "PeakFilter"), ("Distortion",),
                                                         ("PeakFilter",), ()))
    probs = np.zeros(len(chains))
    # the likeliest single chain holds both effects, but PeakFilter is in only 0.40 of the mass: Distortion alone
    probs[[both, dist, peak, none]] = [0.35, 0.30, 0.05, 0.30]
    assert inference.presence_probabilities(info, probs) == pytest.approx({"Distortion": 0.65, "PeakFilter": 0.40})
    assert inference.decide(info, probs) == both  # no decision metadata: the likeliest chain
    ruled = _with_decision(info, {"rule": "presence", "threshold": 0.5})
    assert ruled.presence_threshold == 0.5
    assert inference.decide(ruled, probs) == dist
    ranked = rank_chains(ruled, probs, np.full((len(chains), vocab.n_params), 0.5))
    assert ranked[0].chain_index == dist and [r.chain_index for r in ranked[1:3]] == [both, none]
    # nothing reaches a high threshold: no effect is named
    assert inference.decide(_with_decision(info, {"rule": "presence", "threshold": 0.9}), probs) == none


@pytest.mark.parametrize("decision", [{"rule": "presence", "threshold": 1.5}, {"rule": "vote", "threshold": 0.5},
                                      {"rule": "presence"}, "presence"])
def test_a_malformed_decision_rule_is_refused(decision):
    _, info = _two_effect_info()
    with pytest.raises(FxmatchInputError, match="decision"):
        _with_decision(info, decision)


def test_an_estimate_carries_each_effects_presence_probability(model):
    rng = np.random.default_rng(5)
    audio = (0.1 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    est = EstimatorSession(model, providers="cpu").estimate_array(audio, SAMPLE_RATE, top=None)
    assert set(est.presence) == {e.name for e in EstimatorSession(model, providers="cpu").info.effects}
    for name, p in est.presence.items():
        assert p == pytest.approx(sum(c.probability for c in est.ranked if name in c.chain), abs=1e-9)
    assert est.presence_threshold is None  # the tiny model carries no decision rule


def test_the_report_says_which_effects_were_heard():
    from types import SimpleNamespace

    from fxmatch.commands.estimate import presence_line

    result = SimpleNamespace(presence={"Distortion": 0.98, "Reverb": 0.39, "Delay": 0.05}, presence_threshold=0.7)
    assert presence_line(result) == "Distortion 0.98, Reverb 0.39 (an effect is named at >= 0.70)"
    assert presence_line(SimpleNamespace(presence={"Delay": 0.1}, presence_threshold=None)) == "no effect above 0.20"
    assert presence_line(SimpleNamespace(presence={}, presence_threshold=None)) == ""
