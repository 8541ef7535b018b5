import json
import pickle

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import pytest
import torch

from export import onnx_export
from export.onnx_export import export_checkpoint, load_checkpoint
from fxmatch import testsignals
from fxmatch.cli import main
from fxmatch.inference import ModelInfo
from fxmatch.vocabulary import ChainVocabulary
from tests.export.helpers import SAMPLE_RATE, WINDOW_SECONDS, tiny_checkpoint, tiny_encoder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(encoder, checkpoint path, onnx path, export report) of a tiny untrained model."""
    folder = tmp_path_factory.mktemp("export")
    enc = tiny_encoder()
    ckpt = tiny_checkpoint(folder / "ckpt.pt", enc)
    report = export_checkpoint(ckpt, folder / "tiny.onnx", name="tiny", version="0")
    return enc, ckpt, folder / "tiny.onnx", report


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _no_leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


def test_export_parity_onnxruntime_matches_pytorch_within_1e4_relative(exported):
    _, _, path, report = exported
    assert path.is_file() and report.size_bytes == path.stat().st_size
    parity = report.parity
    assert parity["relative"] <= 1e-4 and parity["max_abs"] < 1e-5
    assert {"random", "audio", "audio_short", "audio_long"} <= set(parity["cases"])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


@pytest.mark.parametrize("shape", [(1, 8000), (3, 3000), (2, 21000), (1, 300)])
def test_exported_graph_has_dynamic_batch_and_length(exported, shape):
    enc, _, path, _ = exported
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == ["audio"]
    assert [o.name for o in sess.get_outputs()] == ["chain_logits", "params"]
    audio = (np.random.default_rng(1).standard_normal(shape) * 0.2).astype(np.float32)
    logits, params = sess.run(None, {"audio": audio})
    with torch.no_grad():
        ref_logits, ref_params = enc(torch.from_numpy(audio))
    assert logits.shape == (shape[0], enc.n_chains) and params.shape == (shape[0], enc.n_chains, enc.n_params)
    np.testing.assert_allclose(logits, ref_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(params, ref_params.numpy(), atol=1e-5)


def test_the_dft_basis_is_computed_in_the_graph_not_stored(exported):
    enc, _, path, _ = exported
    model = onnx.load(str(path))
    basis = enc.frontend.basis.numpy()
    stored = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer]
    stored += [onnx.numpy_helper.to_array(a.t) for n in model.graph.node if n.op_type == "Constant"
               for a in n.attribute if a.name == "value"]
    assert max(a.size for a in stored) < basis.size // 4  # the basis is by far the largest tensor a model had
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith("/frontend/"))
    # run the graph up to the basis (the conv's weight input) and compare with the module's float64-made basis
    model.graph.output.append(onnx.helper.make_tensor_value_info(conv.input[1], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    computed = sess.run([conv.input[1]], {"audio": np.zeros((1, 4000), np.float32)})[0]
    assert computed.shape == basis.shape
    np.testing.assert_allclose(computed, basis, rtol=0, atol=2e-6 * np.abs(basis).max())


def test_a_graph_without_the_basis_constant_is_left_unchanged():
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    before = model.SerializeToString()
    assert onnx_export.compute_dft_basis_in_graph(model, tiny_encoder().frontend) is False
    assert model.SerializeToString() == before


def test_parity_on_real_audio_pluck(exported):
    enc, _, path, _ = exported
    x = testsignals.make("chord", SAMPLE_RATE, WINDOW_SECONDS, seed=3)
    logits, params = _session(path).run(None, {"audio": x})
    with torch.no_grad():
        ref = enc(torch.from_numpy(x))
    assert np.max(np.abs(logits - ref[0].numpy())) < 1e-5
    assert np.max(np.abs(params - ref[1].numpy())) < 1e-5


def test_metadata_round_trip(exported):
    enc, _, path, _ = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    meta = {k: json.loads(v) for k, v in props.items()}  # every value is JSON
    assert meta["fxmatch_format"] == {"format": "fxmatch-onnx-model", "version": 1}
    assert meta["sample_rate"] == SAMPLE_RATE
    assert meta["analysis_window"]["samples"] == int(SAMPLE_RATE * WINDOW_SECONDS)
    assert meta["analysis_window"]["seconds"] == pytest.approx(WINDOW_SECONDS)
    assert meta["analysis_window"]["hop_samples"] == int(SAMPLE_RATE * WINDOW_SECONDS / 2)
    assert meta["vocabulary"] == enc.vocab.to_dict()
    assert ChainVocabulary.from_dict(meta["vocabulary"]).to_dict() == enc.vocab.to_dict()
    assert meta["model"] == {"name": "tiny", "version": "0"}
    assert meta["training_data"]["source"]["kind"] == "SynthSource"
    assert meta["encoder_config"] == json.loads(json.dumps(enc.config["encoder"]))
    assert meta["checkpoint"]["file"] == "ckpt.pt" and meta["checkpoint"]["step"] == 3
    info = ModelInfo.from_metadata(props)
    assert info.chains == enc.vocab.chains and info.n_params == enc.vocab.n_params
    assert info.label == "tiny-v0"


def test_export_reads_the_plain_checkpoint_layout_and_defaults_the_name(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "plain.pt", layout="plain")
    encoder, data = load_checkpoint(ckpt)
    assert encoder.n_chains == 2 and "model_state" in data
    report = export_checkpoint(ckpt, tmp_path / "my-model.onnx")
    assert report.metadata["model"] == {"name": "my-model", "version": "1"}
    assert report.metadata["analysis_window"]["seconds"] == pytest.approx(WINDOW_SECONDS)  # from data.source


def test_export_cli_writes_the_model_and_reports_parity(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), str(out), "--window-seconds", "0.25", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parity"]["relative"] <= 1e-4
    assert report["analysis_window"]["samples"] == SAMPLE_RATE // 4
    assert report["model"]["name"] == "m"
    assert _no_leftovers(tmp_path, {"c.pt", "m.onnx"})


class _Foreign:
    pass


def _bad_checkpoints(folder):
    enc = tiny_encoder()
    other = tiny_encoder(ChainVocabulary(effects=(enc.vocab.effects[0],), max_length=1, allow_permutations=True,
                                         chains=((), ("Distortion",), ("Distortion",))))
    cases = {
        "missing": None,
        "empty": b"",
        "garbage": b"\x00\x01not a checkpoint" * 10,
        "json": b'{"model": 1}',
    }
    paths = {}
    for name, content in cases.items():
        p = folder / f"{name}.pt"
        if content is not None:
            p.write_bytes(content)
        paths[name] = p
    with open(folder / "pickle.pt", "wb") as fh:
        pickle.dump({"model": _Foreign()}, fh)
    paths["pickle"] = folder / "pickle.pt"
    torch.save({"model": _Foreign()}, folder / "foreign_object.pt")
    paths["foreign_object"] = folder / "foreign_object.pt"
    torch.save({"weights": torch.zeros(3)}, folder / "no_keys.pt")
    paths["no_keys"] = folder / "no_keys.pt"
    torch.save(torch.zeros(3), folder / "tensor.pt")
    paths["tensor"] = folder / "tensor.pt"
    torch.save({"format": "someone-else", "model": {}, "model_config": enc.config}, folder / "format.pt")
    paths["format"] = folder / "format.pt"
    torch.save({"model_config": other.config, "model": enc.state_dict()}, folder / "mismatch.pt")
    paths["mismatch"] = folder / "mismatch.pt"
    return paths


def test_every_bad_checkpoint_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    for name, path in _bad_checkpoints(tmp_path).items():
        before = sorted(p.name for p in tmp_path.iterdir())
        out = tmp_path / f"{name}.onnx"
        assert main(["export", str(path), str(out)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fxmatch: error:"), (name, err)
        assert "Traceback" not in err[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == before, name


def test_export_into_a_missing_folder_exits_2(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    assert main(["export", str(ckpt), str(tmp_path / "nope" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_parity_failure_exits_1_and_leaves_no_file(tmp_path, capsys, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    original = onnx_export.to_onnx_model

    def tampered(encoder, metadata, opset=17):
        model = original(encoder, metadata, opset)
        with torch.no_grad():  # PyTorch now disagrees with the graph already exported
            encoder.chain_head.bias.add_(0.5)
        return model

    monkeypatch.setattr(onnx_export, "to_onnx_model", tampered)
    assert main(["export", str(ckpt), str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "disagree" in err and "nothing written" in err
    assert _no_leftovers(tmp_path, {"c.pt"})
