"""Session-state keys of the dashboard, all in one place.

Widget keys double as the handles that tests (``AppTest``) and the browser test
use to find and drive a widget, so they must stay stable. Keys for values
the pages share (not widgets) are listed first.
"""

from __future__ import annotations

# Values the pages share (set by code, not by a widget).
DATA_SELECTION = "data_selection"
"""The validated ``DataSelection`` from the Data page, which the Train page trains on."""
DATA_LOADED_FILE = "data_loaded_file"
"""Identity (path, size, modification time) of the file whose columns the Data page maps.

When it changes, the mapping widgets are reset to the guessed schema.
"""
PREDICT_LOADED_FILE = "predict_loaded_file"
"""Same as ``DATA_LOADED_FILE``, for the file uploaded on the Predict page."""
TRAIN_WATCHED_RUN = "train_watched_run"
"""Id of the run started last in this session, whose progress the Train page shows."""
UPLOADED_DATA_FILE = "uploaded_data_file"
"""``(path, display name)`` of the file last uploaded on the Data page (kept after the uploader)."""
UPLOADED_PREDICT_FILE = "uploaded_predict_file"
"""``(path, display name)`` of the file last uploaded on the Predict page."""
INSPECT_COMPUTED = "inspect_computed"
"""Set of ``(run id, row number, method)`` whose attributions were computed in this session.

Long sequences wait for the Compute button; once computed they show at once.
"""

# Sidebar.
LANGUAGE = "language"
"""Selectbox: interface language, ``"en"`` or ``"zh_CN"``."""

# Data page.
DATA_SOURCE = "data_source"
"""Radio: ``"demo"`` (the bundled claims.csv, the default) or ``"upload"``."""
DATA_UPLOAD = "data_upload"
"""File uploader: a CSV, TSV, JSONL, JSON or Parquet file."""
DATA_TEXT_COLUMN = "data_text_column"
"""Selectbox: the column with the text (for pairs: the context)."""
DATA_PAIR_COLUMN = "data_pair_column"
"""Selectbox: the column with the second segment (the claim), or ``NO_COLUMN``."""
DATA_LABEL_COLUMN = "data_label_column"
"""Selectbox: the column with the labels."""
DATA_LABEL_MAP = "data_label_map"
"""Selectbox: ``"none"``, ``"faithdial"`` (FaithDial BEGIN labels) or ``"custom"``."""
DATA_LABEL_MAP_JSON = "data_label_map_json"
"""Text area: a custom label map as a JSON object (shown for ``"custom"``)."""
DATA_DOWNLOAD = "data_download"
"""Download button: the loaded table as CSV."""

# Train page.
TRAIN_MODEL = "train_model"
"""Selectbox: a bundled encoder name, or ``LOCAL_MODEL`` for a local folder."""
TRAIN_MODEL_PATH = "train_model_path"
"""Text input: path of a local model folder (shown for ``LOCAL_MODEL``)."""
TRAIN_NAME = "train_name"
"""Text input: display name of the new run (optional)."""
TRAIN_LEARNING_RATE = "train_learning_rate"
TRAIN_EPOCHS = "train_epochs"
TRAIN_BATCH_SIZE = "train_batch_size"
TRAIN_WEIGHT_DECAY = "train_weight_decay"
TRAIN_MAX_LENGTH = "train_max_length"
TRAIN_PATIENCE = "train_patience"
"""Number input: early-stopping patience in epochs (0 turns early stopping off)."""
TRAIN_VALIDATION_FRACTION = "train_validation_fraction"
TRAIN_SEED = "train_seed"
TRAIN_START = "train_start"
"""Button: create a queued run and start its worker process."""
TRAIN_RUN = "train_run"
"""Selectbox: the run whose progress and status the Train page shows."""
TRAIN_CANCEL = "train_cancel"
"""Button: cancel the shown run (only while it is queued or running)."""
TRAIN_RUNS_DOWNLOAD = "train_runs_download"
"""Download button: the run list as CSV."""

# Predict page.
PREDICT_RUN = "predict_run"
"""Selectbox: a completed classification run."""
PREDICT_SOURCE = "predict_source"
"""Radio: ``"validation"`` (the run's validation split) or ``"upload"``."""
PREDICT_UPLOAD = "predict_upload"
PREDICT_TEXT_COLUMN = "predict_text_column"
PREDICT_PAIR_COLUMN = "predict_pair_column"
PREDICT_LABEL_COLUMN = "predict_label_column"
"""Selectbox: the gold-label column of the uploaded file, or ``NO_COLUMN``."""
PREDICT_ONLY_FLAGGED = "predict_only_flagged"
PREDICT_ONLY_WRONG = "predict_only_wrong"
PREDICT_LABELS = "predict_labels"
"""Multiselect: keep rows with these predicted labels (empty keeps all)."""
PREDICT_DOWNLOAD = "predict_download"
"""Download button: the filtered predictions as CSV."""

# Inspect page.
INSPECT_RUN = "inspect_run"
INSPECT_EXAMPLE = "inspect_example"
"""Selectbox: position of the example in the validation predictions table."""
INSPECT_ONLY_FLAGGED = "inspect_only_flagged"
"""Checkbox: list only flagged examples in ``INSPECT_EXAMPLE``."""
INSPECT_METHOD = "inspect_method"
"""Selectbox: attribution method (integrated gradients by default)."""
INSPECT_LAYER = "inspect_layer"
INSPECT_HEAD = "inspect_head"
INSPECT_COMPUTE = "inspect_compute"
"""Button: compute attributions for a long sequence (short ones run at once)."""
INSPECT_WORD_DOWNLOAD = "inspect_word_download"
"""Download button: the word attribution scores of the example as CSV."""

# Element keys of figures and tables, for tests that look them up.
DATA_CLASS_CHART = "data_class_chart"
TRAIN_LOSS_CHART = "train_loss_chart"
TRAIN_RUNS_TABLE = "train_runs_table"
INSPECT_PROBABILITY_CHART = "inspect_probability_chart"
INSPECT_WORD_CHART = "inspect_word_chart"
INSPECT_ATTENTION_HEATMAP = "inspect_attention_heatmap"
INSPECT_ATTENTION_GRID = "inspect_attention_grid"

# Option values shared by several widgets.
NO_COLUMN = "__none__"
"""Option value of a column selectbox that means "no column"."""
LOCAL_MODEL = "__local__"
"""Option value of ``TRAIN_MODEL`` that means "a local model folder"."""

PERSISTENT_WIDGET_KEYS = (
    DATA_SOURCE,
    DATA_TEXT_COLUMN,
    DATA_PAIR_COLUMN,
    DATA_LABEL_COLUMN,
    DATA_LABEL_MAP,
    DATA_LABEL_MAP_JSON,
    TRAIN_MODEL,
    TRAIN_MODEL_PATH,
    TRAIN_NAME,
    TRAIN_LEARNING_RATE,
    TRAIN_EPOCHS,
    TRAIN_BATCH_SIZE,
    TRAIN_WEIGHT_DECAY,
    TRAIN_MAX_LENGTH,
    TRAIN_PATIENCE,
    TRAIN_VALIDATION_FRACTION,
    TRAIN_SEED,
    TRAIN_RUN,
    PREDICT_RUN,
    PREDICT_SOURCE,
    PREDICT_TEXT_COLUMN,
    PREDICT_PAIR_COLUMN,
    PREDICT_LABEL_COLUMN,
    PREDICT_ONLY_FLAGGED,
    PREDICT_ONLY_WRONG,
    PREDICT_LABELS,
    INSPECT_RUN,
    INSPECT_EXAMPLE,
    INSPECT_ONLY_FLAGGED,
    INSPECT_METHOD,
    INSPECT_LAYER,
    INSPECT_HEAD,
)
"""Widget keys whose values survive a switch to another page.

Streamlit drops the state of a widget that a run does not draw. ``app.py``
writes these values back on every run, which turns them into plain session
values that outlive the page. File uploaders and buttons cannot be kept this way.
"""
