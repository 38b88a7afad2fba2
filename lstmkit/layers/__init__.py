"""Layers: recurrent layers (LSTM, GRU, SimpleRNN) and the layers composed around them."""

from lstmkit.layers.base import Layer, deserialize, get_layer_class, register, serialize

__all__ = ["Layer", "deserialize", "get_layer_class", "register", "serialize"]
