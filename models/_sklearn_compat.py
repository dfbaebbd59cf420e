"""scikit-learn's private API that :class:`~genverify.models.BernoulliMixture` uses, in one place.

An estimator that validates its parameters and input the way scikit-learn's
own do needs names scikit-learn keeps private: ``_fit_context`` (parameter
validation around ``fit``, since 1.3), ``Interval`` and ``StrOptions`` (the
``_parameter_constraints`` vocabulary, since 1.2), and ``validate_data``
(public only from 1.6; earlier the same checks are the estimator's own
``_validate_data`` method). pyproject admits scikit-learn >= 1.4, so the one
fallback below covers 1.4 and 1.5. If scikit-learn moves these again, this
is the file to change.
"""

from __future__ import annotations

from sklearn.base import _fit_context
from sklearn.utils import validation as _validation
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Interval", "StrOptions", "fit_context", "validate_data"]

fit_context = _fit_context


def _validate_data_by_method(estimator, X="no_validation", y="no_validation", reset=True, **check_params):
    """scikit-learn < 1.6: ``validate_data(est, ...)`` was the method ``est._validate_data(...)``."""
    return estimator._validate_data(X, y, reset=reset, **check_params)


#: ``validate_data(estimator, X, reset=..., **check_array_params)``: checks X, records or checks
#: ``n_features_in_``, and raises scikit-learn's messages ("X has 3 features, but ... is expecting 4").
validate_data = getattr(_validation, "validate_data", _validate_data_by_method)
