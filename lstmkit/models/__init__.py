"""Models and the five-step life cycle: define, compile, fit, evaluate, predict.

``Sequential`` stacks layers; ``Model`` wraps any ``torch.nn.Module`` (and is Sequential's base);
``load_model`` rebuilds a saved model; ``callbacks`` holds EarlyStopping, ModelCheckpoint, ...
"""

from lstmkit.models import callbacks
from lstmkit.models.callbacks import History
from lstmkit.models.model import Model
from lstmkit.models.saving import load_model
from lstmkit.models.seed import set_seed
from lstmkit.models.sequential import Sequential

__all__ = ["History", "Model", "Sequential", "callbacks", "load_model", "set_seed"]
