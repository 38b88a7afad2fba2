"""Layers: recurrent layers (LSTM, GRU, SimpleRNN) and the layers composed around them."""

from lstmkit.layers.base import Layer, deserialize, get_layer_class, register, serialize
from lstmkit.layers.bidirectional import Bidirectional
from lstmkit.layers.convert import from_torch, to_torch
from lstmkit.layers.recurrent import GRU, LSTM, Recurrent, SimpleRNN

__all__ = ["Bidirectional", "GRU", "LSTM", "Layer", "Recurrent", "SimpleRNN", "deserialize", "from_torch",
           "get_layer_class", "register", "serialize", "to_torch"]
from lstmkit.layers.core import (Activation, Dense, Dropout, Embedding, Flatten, Masking, RepeatVector,
                                 TimeDistributed)

__all__ += ["Activation", "Dense", "Dropout", "Embedding", "Flatten", "Masking", "RepeatVector",
            "TimeDistributed"]
from lstmkit.layers.attention import Attention
from lstmkit.layers.conv import (Conv1D, Conv2D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D,
                                 MaxPooling2D)
from lstmkit.layers.seq2seq import Parallel, Seq2Seq

__all__ += ["Attention", "Conv1D", "Conv2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D",
            "MaxPooling2D", "Parallel", "Seq2Seq"]
