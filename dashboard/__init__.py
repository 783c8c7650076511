"""The halluscope Streamlit dashboard: a thin layer of pages over the ``halluscope`` library.

Start it with ``halluscope dashboard``; ``app.py`` is the entry script.
"""
