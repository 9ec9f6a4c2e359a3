"""Two-stage playlist continuation: high-recall candidates, then a LightGBM re-ranker.

Why: every first-stage model (WRMF, EASE, item/user kNN, popularity, titles) is good at a
different kind of playlist; a learning-to-rank model over their merged candidates, with
features none of them sees (artist and album overlap, recency of co-occurrence, title words),
is the design that won the RecSys Challenge 2018. Modules, in pipeline order:

- :mod:`segue.ranking.inner_split`: challenge-style queries (MPD categories, Melon question
  types) carved out of training playlists, so the ranker never learns from evaluation answers;
- :mod:`segue.ranking.candidates`: per-source top-N, merged by fitted weighted rank fusion;
- :mod:`segue.ranking.features`: vectorised (query, candidate) features;
- :mod:`segue.ranking.lambdarank`: the LightGBM lambdarank ranker;
- :mod:`segue.ranking.training`: fitting it (inner folds, first stage, fusion weights, cold
  start, rankers);
- :mod:`segue.ranking.answering`: ranking a batch of queries with a fitted model;
- :mod:`segue.ranking.two_stage`: the model itself (songs, Melon's tags, cold start), a
  registered segue model like any other (fit, the one inference path, ``segue.save/load``).
"""
