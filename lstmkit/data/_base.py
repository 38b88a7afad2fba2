"""The fit / transform / inverse_transform protocol shared by lstmkit's transformers.

It follows scikit-learn's estimator conventions without depending on scikit-learn: constructor
arguments are stored unchanged under their own names (so ``get_params`` / ``set_params`` and
``sklearn.base.clone`` work), ``fit`` returns ``self``, and everything learned from data ends in
an underscore.
"""

from __future__ import annotations

import inspect

from lstmkit.errors import NotFittedError


class Transformer:
    """Base class: parameter access in scikit-learn's style and a fitted-state check."""

    _fitted_attribute = "n_features_in_"

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments, by name (scikit-learn's protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments by name; returns ``self`` (scikit-learn's protocol)."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                listed = ", ".join(repr(v) for v in valid)
                raise ValueError(f"{type(self).__name__}.set_params: unknown parameter {name!r}. "
                                 f"Expected one of: {listed}.")
            setattr(self, name, value)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        return self.fit(X, y, **fit_params).transform(X)

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(f"{type(self).__name__}.{method}: this {type(self).__name__} is not "
                                 f"fitted yet; call fit(X) on the training data first.")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
