"""Read data files and check them against a task schema.

Typical use::

    from halluscope.data import (
        FAITHDIAL_BEGIN_LABEL_MAP, guess_classification_schema, prepare_classification, read_table,
    )

    table = read_table("wow.csv")
    schema = guess_classification_schema(table.frame)
    data = prepare_classification(table, schema, label_map=FAITHDIAL_BEGIN_LABEL_MAP)

Every rejected input raises a ``DataError`` whose message names the file, the
column, the rows, the value and the fix.
"""

from halluscope.data.errors import (
    DataError,
    DataFormatError,
    DataTooLargeError,
    DataValidationError,
    format_rows,
)
from halluscope.data.labels import FAITHDIAL_BEGIN_LABEL_MAP
from halluscope.data.reading import (
    DEFAULT_MAX_BYTES,
    FORMAT_BY_EXTENSION,
    LoadedTable,
    read_table,
)
from halluscope.data.schema import (
    ClassificationSchema,
    GenerationSchema,
    guess_classification_schema,
    guess_generation_schema,
)
from halluscope.data.validate import (
    DEFAULT_MAX_CHARS,
    ClassificationData,
    GenerationData,
    UnlabeledTexts,
    prepare_classification,
    prepare_generation,
    prepare_unlabeled,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CHARS",
    "FAITHDIAL_BEGIN_LABEL_MAP",
    "FORMAT_BY_EXTENSION",
    "ClassificationData",
    "ClassificationSchema",
    "DataError",
    "DataFormatError",
    "DataTooLargeError",
    "DataValidationError",
    "GenerationData",
    "GenerationSchema",
    "LoadedTable",
    "UnlabeledTexts",
    "format_rows",
    "guess_classification_schema",
    "guess_generation_schema",
    "prepare_classification",
    "prepare_generation",
    "prepare_unlabeled",
    "read_table",
]
