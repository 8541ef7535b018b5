import pytest

from fxmatch.vocabulary import ChainVocabulary


def test_default_vocabulary_has_64_chains_in_canonical_order():
    vocab = ChainVocabulary.default()
    assert vocab.n_chains == 64
    assert vocab.chains[0] == ()
    order = {n: i for i, n in enumerate(vocab.effect_names)}
    for chain in vocab.chains:
        assert [order[n] for n in chain] == sorted(order[n] for n in chain)


def test_vocabulary_round_trips_through_dict():
    vocab = ChainVocabulary.default()
    again = ChainVocabulary.from_dict(vocab.to_dict())
    assert again.chains == vocab.chains and again.n_params == vocab.n_params


def test_decode_maps_unit_values_to_units():
    vocab = ChainVocabulary.default()
    k = vocab.chain_index(("Distortion", "Reverb"))
    decoded = vocab.decode(k, [0.0] * vocab.n_params)
    assert [n for n, _ in decoded] == ["Distortion", "Reverb"]
    assert decoded[0][1]["drive_db"] == vocab.effect("Distortion").param("drive_db").minimum


def test_permutations_enlarge_the_candidate_set():
    vocab = ChainVocabulary(effects=ChainVocabulary.default().effects[:3], max_length=2, allow_permutations=True)
    assert vocab.n_chains == 1 + 3 + 6


def _with_tone_stage(**kwargs) -> ChainVocabulary:
    from fxmatch.effects import KNOWN_EFFECTS, get_spec

    names = [n for n in KNOWN_EFFECTS if n in ChainVocabulary.default().effect_names or n == "LowpassFilter"]
    return ChainVocabulary(effects=tuple(get_spec(n) for n in names), max_length=3, **kwargs)


def test_only_after_keeps_a_tone_stage_right_after_its_drive():
    free = _with_tone_stage()
    tied = _with_tone_stage(only_after={"LowpassFilter": "Distortion"})
    assert free.n_chains == 93 and tied.n_chains == 71
    with_lowpass = [c for c in tied.chains if "LowpassFilter" in c]
    assert len(with_lowpass) == 7
    assert all(c[c.index("LowpassFilter") - 1] == "Distortion" for c in with_lowpass)
    assert ("LowpassFilter",) not in tied.chains and ("Compressor", "LowpassFilter") not in tied.chains
    assert set(tied.chains) - set(free.chains) == set()
    assert tied.allows(("Distortion", "LowpassFilter", "Delay")) and not tied.allows(("LowpassFilter", "Delay"))


def test_only_after_travels_with_the_vocabulary_and_rejects_unknown_effects():
    tied = _with_tone_stage(only_after={"LowpassFilter": "Distortion"})
    again = ChainVocabulary.from_dict(tied.to_dict())
    assert again.only_after == (("LowpassFilter", "Distortion"),) and again.chains == tied.chains
    rebuilt = ChainVocabulary(effects=tied.effects, max_length=3, only_after=dict(again.only_after))
    assert rebuilt.chains == tied.chains
    with pytest.raises(ValueError, match="only_after"):
        ChainVocabulary(effects=ChainVocabulary.default().effects, only_after={"LowpassFilter": "Distortion"})
