"""Training of the fxmatch estimator: dry sources, target rendering, encoder, winner-takes-all trainer."""
