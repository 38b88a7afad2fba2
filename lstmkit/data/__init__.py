"""Data preparation for LSTMs: pure, checked, invertible transforms from raw series to
``[samples, timesteps, features]`` and back.

- shape: :func:`to_3d`, :func:`to_supervised` (windows ``X (N, lookback, F)``, ``y (N, horizon)``)
- encode: :class:`IntegerEncoder`, :class:`OneHotEncoder`, :class:`CharVocabulary`
- difference: :func:`difference`, :func:`inverse_difference`, :class:`Differencer`
- scale: :class:`MinMaxScaler`, :class:`StandardScaler` (scikit-learn's protocol, no dependency)
- pad and mask: :func:`pad_sequences`, :func:`unpad_sequences`, :func:`mark_missing`,
  :func:`restore_missing`
- split: :func:`time_split`, :func:`walk_forward`
- truncated BPTT: :func:`batchify`, :func:`bptt_chunks`, :func:`unchunk`
- compose: :class:`Pipeline` (difference -> scale -> window, inverted in reverse)

Every value-changing step has its inverse; statistics are fitted on the training split only.
"""

from lstmkit.data.bptt import Chunks, batchify, bptt_chunks, unchunk
from lstmkit.data.differencing import Differencer, difference, inverse_difference
from lstmkit.data.encoding import CharVocabulary, IntegerEncoder, OneHotEncoder
from lstmkit.data.padding import Missing, Padded, mark_missing, pad_sequences, restore_missing, unpad_sequences
from lstmkit.data.pipeline import Pipeline
from lstmkit.data.scaling import MinMaxScaler, StandardScaler
from lstmkit.data.splits import Fold, time_split, walk_forward
from lstmkit.data.windows import Supervised, to_3d, to_supervised

__all__ = [
    "CharVocabulary", "Chunks", "Differencer", "Fold", "IntegerEncoder", "MinMaxScaler", "Missing",
    "OneHotEncoder", "Padded", "Pipeline", "StandardScaler", "Supervised", "batchify", "bptt_chunks",
    "difference", "inverse_difference", "mark_missing", "pad_sequences", "restore_missing",
    "time_split", "to_3d", "to_supervised", "unchunk", "unpad_sequences", "walk_forward",
]
