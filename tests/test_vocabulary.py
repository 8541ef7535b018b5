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
