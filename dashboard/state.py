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

RUNS_PENDING_DELETE = "runs_pending_delete"
"""Id of the run whose Delete button was clicked and that waits for the confirmation."""
RUNS_MESSAGE = "runs_message"
"""``(kind, text)`` of a message the Runs page shows once after a rerun (``"success"``)."""
RUNS_REPORT = "runs_report"
"""``(run id, HTML)`` of the report built last on the Runs page, for its download button."""
RUNS_NAME_FOR = "runs_name_for"
"""Id of the run whose name ``RUNS_NEW_NAME`` was filled with."""
REVIEW_LOADED = "review_loaded"
"""``(run id, example id, time of the stored mark)`` that the review widgets were filled from."""

GENERATION_SELECTION = "generation_selection"
"""The validated ``GenerationSelection`` from the Data page, for fine-tuning a causal LM."""
DATA_GENERATION_LOADED_FILE = "data_generation_loaded_file"
"""Same as ``DATA_LOADED_FILE``, for the generation column mapping."""
ANSWER_COMPUTED = "answer_computed"
"""Set of ``(run id, answer index, method)`` whose answer attributions were computed."""

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
DATA_TASK = "data_task"
"""Radio: ``"classification"`` or ``"generation"``; the Train page follows it."""
DATA_PROMPT_COLUMN = "data_prompt_column"
DATA_ANSWER_COLUMN = "data_answer_column"
DATA_CONTEXT_COLUMN = "data_context_column"
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
TRAIN_LABEL_SMOOTHING = "train_label_smoothing"
TRAIN_SET_DROPOUT = "train_set_dropout"
"""Checkbox: override the model's dropout with ``TRAIN_DROPOUT``."""
TRAIN_DROPOUT = "train_dropout"
TRAIN_DROP_LABEL_ISSUES = "train_drop_label_issues"
"""Checkbox: leave out the training rows marked as likely label errors."""
TRAIN_KEEP_BEST_EPOCH = "train_keep_best_epoch"
TRAIN_GENERATION_MODEL = "train_generation_model"
"""Selectbox: the causal LM to fine-tune (a bundled decoder or ``LOCAL_MODEL``)."""
TRAIN_GENERATION_MODEL_PATH = "train_generation_model_path"
TRAIN_METHOD = "train_method"
"""Radio: ``"lora"`` or ``"full"`` fine-tuning of a causal LM."""
TRAIN_LORA_RANK = "train_lora_rank"
TRAIN_LORA_ALPHA = "train_lora_alpha"
TRAIN_GENERATION_LEARNING_RATE = "train_generation_learning_rate"
TRAIN_GENERATION_EPOCHS = "train_generation_epochs"
TRAIN_GENERATION_BATCH_SIZE = "train_generation_batch_size"
TRAIN_GENERATION_MAX_LENGTH = "train_generation_max_length"
TRAIN_PROBE_KNOWLEDGE = "train_probe_knowledge"
"""Checkbox: ask the base model every question before fine-tuning (known/unknown facts)."""
TRAIN_PROBE_SAMPLES = "train_probe_samples"
TRAIN_ANSWER_DYNAMICS = "train_answer_dynamics"
"""Checkbox: record each training answer's loss before training and at every epoch end."""
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

# Answers page.
ANSWERS_RUN = "answers_run"
ANSWERS_LIMIT = "answers_limit"
"""Number input: how many held-out questions to answer."""
ANSWERS_MAX_NEW_TOKENS = "answers_max_new_tokens"
ANSWERS_SAMPLE = "answers_sample"
"""Checkbox: sample the answers instead of greedy decoding."""
ANSWERS_TEMPERATURE = "answers_temperature"
ANSWERS_TOP_P = "answers_top_p"
ANSWERS_TOP_K = "answers_top_k"
ANSWERS_SEED = "answers_seed"
ANSWERS_GENERATE = "answers_generate"
ANSWERS_DETECTOR = "answers_detector"
"""Selectbox: the detector whose flags the answer table shows."""
ANSWERS_ONLY_FLAGGED = "answers_only_flagged"
ANSWERS_DOWNLOAD = "answers_download"
ANSWERS_CONTEXT = "answers_context"
"""Text area: a pasted context for a typed question."""
ANSWERS_QUESTION = "answers_question"
ANSWERS_ASK = "answers_ask"

# Inspect answer page.
ANSWER_RUN = "answer_run"
ANSWER_EXAMPLE = "answer_example"
ANSWER_ONLY_FLAGGED = "answer_only_flagged"
ANSWER_DETECTOR = "answer_detector"
ANSWER_TOKEN = "answer_token"
"""Pills: the answer token whose attention and attribution are shown."""
ANSWER_METHOD = "answer_method"
ANSWER_COMPUTE = "answer_compute"
ANSWER_LAYER = "answer_layer"
ANSWER_HEAD = "answer_head"
ANSWER_TOKEN_DOWNLOAD = "answer_token_download"

# Detector quality page.
QUALITY_RUN = "quality_run"
QUALITY_DETECTOR = "quality_detector"
"""Selectbox: the score the threshold applies to.

For a classification run ``low_margin`` or ``low_confidence``, for a
generation run a generation detector such as ``low_logprob``.
"""
QUALITY_THRESHOLD = "quality_threshold"
"""Slider: flag predictions or answers whose score is at least this."""
QUALITY_THRESHOLD_OWNER = "quality_threshold_owner"
"""``(run id, score or detector name)`` whose threshold the slider shows."""
QUALITY_DOWNLOAD = "quality_download"
QUALITY_ANSWERS_DOWNLOAD = "quality_answers_download"
"""Download button: a generation run's labelled answers with every detector's score, as CSV."""
QUALITY_FLAG_RULE = "quality_flag_rule"
"""``(run id, score or detector name, threshold)`` set on the Quality page.

The Predict and Inspect pages flag a classification run's predictions by it,
and the Answers and Inspect answer pages flag a generation run's answers by
it while they show that detector.
"""

# Runs page.
RUNS_FILTER_STATUS = "runs_filter_status"
"""Multiselect: keep runs with these statuses (empty keeps all)."""
RUNS_FILTER_KIND = "runs_filter_kind"
"""Multiselect: keep runs of these kinds (empty keeps all)."""
RUNS_FILTER_TEXT = "runs_filter_text"
"""Text input: keep runs whose name, id, model or data contains this text (case-insensitive)."""
RUNS_SORT = "runs_sort"
"""Selectbox: the column the run table is sorted by."""
RUNS_SORT_DESCENDING = "runs_sort_descending"
RUNS_DOWNLOAD = "runs_download"
"""Download button: the filtered run table as CSV."""
RUNS_SELECTED = "runs_selected"
"""Selectbox: the run whose details and actions the Runs page shows."""
RUNS_NEW_NAME = "runs_new_name"
RUNS_RENAME = "runs_rename"
RUNS_DELETE = "runs_delete"
"""Button: ask to delete the selected run (a confirmation follows)."""
RUNS_DELETE_CONFIRM = "runs_delete_confirm"
RUNS_DELETE_CANCEL = "runs_delete_cancel"
RUNS_REPRODUCE = "runs_reproduce"
"""Button: start a new run with the settings of the selected run."""
RUNS_REPORT_BUILD = "runs_report_build"
RUNS_REPORT_DOWNLOAD = "runs_report_download"
"""Download button: the HTML report of the selected run."""
RUNS_REVIEWS_DOWNLOAD = "runs_reviews_download"
"""Download button: the review marks of the selected run as CSV."""

# Review panel (on the Inspect page).
REVIEW_VERDICT = "review_verdict"
"""Radio: ``NO_VERDICT``, ``"confirmed"`` or ``"false_alarm"``."""
REVIEW_NOTE = "review_note"
REVIEW_SAVE = "review_save"
REVIEW_DOWNLOAD = "review_download"
"""Download button: every review mark of the run as CSV."""

# Training data page (data map and suspected label errors).
TRAINING_DATA_RUN = "training_data_run"
"""Selectbox: the completed classification run whose training rows the page shows."""
TRAINING_DATA_KIND = "training_data_kind"
"""Radio: ``"classification"`` (data map, label errors) or ``"generation"`` (known facts)."""
TRAINING_DATA_GENERATION_RUN = "training_data_generation_run"
"""Selectbox: the completed generation run whose known and unknown facts the page shows."""
KNOWLEDGE_COUNTS_DOWNLOAD = "knowledge_counts_download"
KNOWLEDGE_CURVES_DOWNLOAD = "knowledge_curves_download"
KNOWLEDGE_RATES_DOWNLOAD = "knowledge_rates_download"
TRAINING_DATA_REGION = "training_data_region"
"""Multiselect: data-map regions whose rows the table lists (empty lists all)."""
TRAINING_DATA_FIND_ISSUES = "training_data_find_issues"
"""Button: rank the run's training rows by how likely their label is wrong."""
TRAINING_DATA_ONLY_ISSUES = "training_data_only_issues"
TRAINING_DATA_MAP_DOWNLOAD = "training_data_map_download"
TRAINING_DATA_ISSUES_DOWNLOAD = "training_data_issues_download"

# Compare page.
COMPARE_RUNS = "compare_runs"
"""Multiselect: the completed classification runs to compare, the first is the reference."""
COMPARE_CHANGE = "compare_change"
"""Multiselect: keep example rows with these changes (empty keeps all)."""
COMPARE_SUMMARY_DOWNLOAD = "compare_summary_download"
COMPARE_EXAMPLES_DOWNLOAD = "compare_examples_download"
COMPARE_NEIGHBOUR_ROW = "compare_neighbour_row"
"""Selectbox: the flagged validation row whose nearest training rows are listed."""
COMPARE_NEIGHBOURS_DOWNLOAD = "compare_neighbours_download"

# Element keys of figures and tables, for tests that look them up.
TRAINING_DATA_MAP_CHART = "training_data_map_chart"
TRAINING_DATA_ISSUES_TABLE = "training_data_issues_table"
KNOWLEDGE_LOSS_CHART = "knowledge_loss_chart"
KNOWLEDGE_RATES_CHART = "knowledge_rates_chart"
KNOWLEDGE_RATES_TABLE = "knowledge_rates_table"
COMPARE_METRICS_CHART = "compare_metrics_chart"
COMPARE_SUMMARY_TABLE = "compare_summary_table"
COMPARE_EXAMPLES_TABLE = "compare_examples_table"
DATA_CLASS_CHART = "data_class_chart"
DATA_ANSWER_LENGTH_CHART = "data_answer_length_chart"
ANSWERS_TABLE = "answers_table"
ANSWER_SCORE_CHART = "answer_score_chart"
ANSWER_ATTENTION_ROW = "answer_attention_row"
ANSWER_ATTENTION_HEATMAP = "answer_attention_heatmap"
ANSWER_ATTENTION_GRID = "answer_attention_grid"
ANSWER_LOOKBACK_CHART = "answer_lookback_chart"
ANSWER_LOOKBACK_HEADS_CHART = "answer_lookback_heads_chart"
ANSWER_ROLLOUT_HEATMAP = "answer_rollout_heatmap"
ANSWER_WORD_CHART = "answer_word_chart"
TRAIN_LOSS_CHART = "train_loss_chart"
TRAIN_RUNS_TABLE = "train_runs_table"
INSPECT_PROBABILITY_CHART = "inspect_probability_chart"
INSPECT_WORD_CHART = "inspect_word_chart"
INSPECT_ATTENTION_HEATMAP = "inspect_attention_heatmap"
INSPECT_ATTENTION_GRID = "inspect_attention_grid"
RUNS_TABLE = "runs_table"
QUALITY_ROC_CHART = "quality_roc_chart"
QUALITY_PR_CHART = "quality_pr_chart"
QUALITY_ANSWERS_TABLE = "quality_answers_table"

# Option values shared by several widgets.
NO_COLUMN = "__none__"
"""Option value of a column selectbox that means "no column"."""
LOCAL_MODEL = "__local__"
"""Option value of ``TRAIN_MODEL`` that means "a local model folder"."""
NO_VERDICT = "__none__"
"""Option value of ``REVIEW_VERDICT`` that means "not reviewed"."""

PERSISTENT_WIDGET_KEYS = (
    DATA_TASK,
    DATA_PROMPT_COLUMN,
    DATA_ANSWER_COLUMN,
    DATA_CONTEXT_COLUMN,
    TRAIN_GENERATION_MODEL,
    TRAIN_GENERATION_MODEL_PATH,
    TRAIN_METHOD,
    TRAIN_LORA_RANK,
    TRAIN_LORA_ALPHA,
    TRAIN_GENERATION_LEARNING_RATE,
    TRAIN_GENERATION_EPOCHS,
    TRAIN_GENERATION_BATCH_SIZE,
    TRAIN_GENERATION_MAX_LENGTH,
    TRAIN_PROBE_KNOWLEDGE,
    TRAIN_PROBE_SAMPLES,
    TRAIN_ANSWER_DYNAMICS,
    ANSWERS_RUN,
    ANSWERS_LIMIT,
    ANSWERS_MAX_NEW_TOKENS,
    ANSWERS_SAMPLE,
    ANSWERS_TEMPERATURE,
    ANSWERS_TOP_P,
    ANSWERS_TOP_K,
    ANSWERS_SEED,
    ANSWERS_DETECTOR,
    ANSWERS_ONLY_FLAGGED,
    ANSWERS_CONTEXT,
    ANSWERS_QUESTION,
    ANSWER_RUN,
    ANSWER_EXAMPLE,
    ANSWER_ONLY_FLAGGED,
    ANSWER_DETECTOR,
    ANSWER_METHOD,
    ANSWER_LAYER,
    ANSWER_HEAD,
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
    QUALITY_RUN,
    QUALITY_DETECTOR,
    QUALITY_THRESHOLD,
    INSPECT_RUN,
    INSPECT_EXAMPLE,
    INSPECT_ONLY_FLAGGED,
    INSPECT_METHOD,
    INSPECT_LAYER,
    INSPECT_HEAD,
    RUNS_FILTER_STATUS,
    RUNS_FILTER_KIND,
    RUNS_FILTER_TEXT,
    RUNS_SORT,
    RUNS_SORT_DESCENDING,
    RUNS_SELECTED,
    TRAIN_LABEL_SMOOTHING,
    TRAIN_SET_DROPOUT,
    TRAIN_DROPOUT,
    TRAIN_DROP_LABEL_ISSUES,
    TRAIN_KEEP_BEST_EPOCH,
    TRAINING_DATA_RUN,
    TRAINING_DATA_KIND,
    TRAINING_DATA_GENERATION_RUN,
    TRAINING_DATA_REGION,
    TRAINING_DATA_ONLY_ISSUES,
    COMPARE_RUNS,
    COMPARE_CHANGE,
    COMPARE_NEIGHBOUR_ROW,
)
"""Widget keys whose values survive a switch to another page.

Streamlit drops the state of a widget that a run does not draw. ``app.py``
writes these values back on every run, which turns them into plain session
values that outlive the page. File uploaders and buttons cannot be kept this way.
"""
