"""Generated entity-resolution records for ``lossreg compare``: ``synthetic:duplicate_records``.

Several noisy records describe each entity (a product, a person): the setting of blocking and
deduplication. Registered in :data:`lossreg.compare._synthetic.GENERATORS`; fully determined by
its parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["duplicate_records"]


def duplicate_records(
    n_samples: int = 1500,
    records_per_entity: int = 3,
    n_numeric: int = 3,
    n_categorical: int = 5,
    vocabulary: int = 30,
    n_variants: int = 2,
    typo_rate: float = 0.2,
    swap_rate: float = 0.05,
    missing_rate: float = 0.1,
    numeric_noise: float = 0.3,
    random_state: int = 0,
) -> pd.DataFrame:
    """Noisy records of entities: target = entity id (task embedding), group = entity id.

    ``n_samples`` records of ``ceil(n_samples / records_per_entity)`` entities, each entity
    with ``records_per_entity`` records (the last one fewer when ``records_per_entity`` does
    not divide ``n_samples``). Each entity has true attributes: ``n_numeric`` numbers (standard
    normal) and ``n_categorical`` words, each drawn uniformly from its column's
    ``vocabulary`` words ``w0, w1, ...``. In a record every field is, independently:

    - missing (``NaN`` / ``None``) with probability ``missing_rate``;
    - for a word: with probability ``swap_rate`` another word of the column (a wrong value);
      with probability ``typo_rate`` one of ``n_variants`` misspellings of the true word
      (``w12~1``: a token that differs from ``w12`` as a typo does, and that other entities'
      records also use); otherwise the true word;
    - for a number: the true value plus Gaussian noise of standard deviation
      ``numeric_noise`` (the entities' own spread is 1).

    Every word field is a single token, so compare's one-hot encoding (the networks' input)
    and the token sets of the ``minhash_lsh`` blocker see the same tokens. Rows are shuffled.

    Columns: ``num0 ..`` (floats), ``cat0 ..`` (words), ``target`` (the entity id as text,
    ``e0, e1 ...``) and ``group`` (the entity number, not a feature: ``split="group"`` then
    tests on entities never trained on). The frame asks for ``task="embedding"``.
    """
    integers = (
        ("n_samples", n_samples, 2),
        ("records_per_entity", records_per_entity, 2),
        ("n_numeric", n_numeric, 0),
        ("n_categorical", n_categorical, 0),
        ("vocabulary", vocabulary, 2),
        ("n_variants", n_variants, 1),
    )
    problems = [
        f"{name} must be an integer >= {low}. Got {value!r}."
        for name, value, low in integers
        if isinstance(value, bool) or not isinstance(value, int) or value < low
    ]
    rates = (("typo_rate", typo_rate), ("swap_rate", swap_rate), ("missing_rate", missing_rate))
    problems += [
        f"{name} must be a probability in [0, 1]. Got {value!r}."
        for name, value in rates
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
    ]
    if not problems and typo_rate + swap_rate + missing_rate > 1:
        problems.append(
            f"typo_rate + swap_rate + missing_rate must be <= 1. Got "
            f"{typo_rate + swap_rate + missing_rate!r}."
        )
    if (
        isinstance(numeric_noise, bool)
        or not isinstance(numeric_noise, (int, float))
        or numeric_noise < 0
    ):
        problems.append(f"numeric_noise must be a number >= 0. Got {numeric_noise!r}.")
    if not problems and n_numeric + n_categorical == 0:
        problems.append("n_numeric + n_categorical must be >= 1: a record needs a field.")
    if problems:
        raise ValueError("synthetic:duplicate_records: " + " ".join(problems))
    n_entities = -(-n_samples // records_per_entity)
    rng = np.random.default_rng(random_state)
    true_numbers = rng.standard_normal((n_entities, n_numeric))
    true_words = rng.integers(0, vocabulary, size=(n_entities, n_categorical))
    entity = np.repeat(np.arange(n_entities), records_per_entity)[:n_samples]
    n_rows = len(entity)
    frame = pd.DataFrame(index=range(n_rows))
    for j in range(n_numeric):
        values = true_numbers[entity, j] + numeric_noise * rng.standard_normal(n_rows)
        values[rng.random(n_rows) < missing_rate] = np.nan
        frame[f"num{j}"] = values
    for j in range(n_categorical):
        # one draw decides the field's fate: missing | swapped | misspelt | true
        fate = rng.random(n_rows)
        swapped = rng.integers(0, vocabulary, size=n_rows)
        variant = rng.integers(1, n_variants + 1, size=n_rows)
        words: list[str | None] = []
        for row in range(n_rows):
            true = true_words[entity[row], j]
            if fate[row] < missing_rate:
                words.append(None)
            elif fate[row] < missing_rate + swap_rate:
                words.append(f"w{swapped[row]}")
            elif fate[row] < missing_rate + swap_rate + typo_rate:
                words.append(f"w{true}~{variant[row]}")
            else:
                words.append(f"w{true}")
        frame[f"cat{j}"] = pd.Series(words, dtype=object)
    # text ids: 500 integer classes would read as a continuous target
    frame["target"] = pd.Series([f"e{e}" for e in entity], dtype=object)
    frame["group"] = entity
    frame = frame.iloc[rng.permutation(n_rows)].reset_index(drop=True)
    frame.attrs["task"] = "embedding"
    return frame
