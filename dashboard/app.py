"""Entry script of the halluscope dashboard: page setup, language switch and navigation.

Run it with ``halluscope dashboard`` (or ``streamlit run dashboard/app.py``).
The run store lives in ``$HALLUSCOPE_HOME`` (default: the per-user data folder).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Streamlit puts this script's folder on sys.path; the pages import the
# ``dashboard`` package, so its parent folder must be there too.
_REPOSITORY_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPOSITORY_ROOT not in sys.path:
    sys.path.insert(0, _REPOSITORY_ROOT)

# No model or data downloads at run time unless a user asks for a hub model.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import streamlit as st  # noqa: E402

from dashboard import state  # noqa: E402
from dashboard.i18n import LANGUAGES, language_from_locale, t  # noqa: E402
from dashboard.services import get_store  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"


def _keep_widget_values() -> None:
    """Write kept widget values back, so they survive a visit to another page."""
    for key in state.PERSISTENT_WIDGET_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _language_switch() -> None:
    if state.LANGUAGE not in st.session_state:
        st.session_state[state.LANGUAGE] = language_from_locale(st.context.locale)
    st.sidebar.selectbox(
        t("app.language"),
        list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        key=state.LANGUAGE,
    )


def main() -> None:
    st.set_page_config(
        page_title="halluscope",
        page_icon=":material/troubleshoot:",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    _keep_widget_values()
    _language_switch()

    pages = [
        st.Page(VIEWS / "data.py", title=t("nav.data"), icon=":material/table_view:", default=True),
        st.Page(VIEWS / "train.py", title=t("nav.train"), icon=":material/model_training:"),
        st.Page(VIEWS / "predict.py", title=t("nav.predict"), icon=":material/checklist:"),
        st.Page(VIEWS / "inspect.py", title=t("nav.inspect"), icon=":material/frame_inspect:"),
        st.Page(VIEWS / "quality.py", title=t("nav.quality"), icon=":material/monitoring:"),
        st.Page(VIEWS / "answers.py", title=t("nav.answers"), icon=":material/chat:"),
        st.Page(
            VIEWS / "inspect_answer.py",
            title=t("nav.inspect_answer"),
            icon=":material/manage_search:",
        ),
        st.Page(
            VIEWS / "training_data.py", title=t("nav.training_data"), icon=":material/scatter_plot:"
        ),
        st.Page(VIEWS / "compare.py", title=t("nav.compare"), icon=":material/compare_arrows:"),
        st.Page(VIEWS / "runs.py", title=t("nav.runs"), icon=":material/history:"),
    ]
    page = st.navigation(pages)

    st.sidebar.caption(t("app.tagline"))
    st.sidebar.caption(t("app.home", home=str(get_store().home)))
    page.run()


main()
