"""halluscope: find and explain hallucinations of small language models.

The library is split by concept: ``data`` reads and validates user files,
``models`` resolves and loads models offline, ``training`` fine-tunes them,
``inference`` runs them, ``explain`` computes attention maps and attributions,
``detect`` flags suspected hallucinations and ``runs`` stores everything a run
produces. The Streamlit dashboard in ``dashboard/`` is a thin layer over these.
"""

__version__ = "0.1.0"
