"""Cells: one time step of each recurrent family, written as the papers' equations."""

from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.cells.variants import VARIANTS, LSTMVariant, get_variant

__all__ = ["GRUCell", "LSTMCell", "LSTMVariant", "RNNCell", "VARIANTS", "get_variant"]
