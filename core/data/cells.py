"""Cell-level helpers shared by the reader and the validators."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def is_blank(value: Any) -> bool:
    """Return True for None, NaN, pandas NA and strings that are empty or whitespace."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    return False


def blank_mask(column: pd.Series) -> np.ndarray:
    """Return a boolean array, True where a cell of ``column`` is blank (see ``is_blank``)."""
    if pd.api.types.is_string_dtype(column.dtype) and not pd.api.types.is_object_dtype(
        column.dtype
    ):
        stripped = column.str.strip()
        return (column.isna() | stripped.eq("")).to_numpy(dtype=bool, na_value=True)
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.isna().to_numpy(dtype=bool)
    return np.fromiter((is_blank(value) for value in column), dtype=bool, count=len(column))
