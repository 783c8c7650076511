"""Seeded demo data about invented entities: claim verification, QA, and label noise.

``generate_claims`` and ``generate_qa`` return pandas frames,
``inject_label_noise`` flips a seeded share of labels, and
``write_demo_assets`` writes the committed files of ``assets/demo/``
(regenerate them with ``python -m halluscope.demo assets/demo``).
"""

from halluscope.demo.assets import DEMO_DIR, demo_path, write_demo_assets
from halluscope.demo.claims import generate_claims
from halluscope.demo.noise import inject_label_noise
from halluscope.demo.qa import REFUSAL_ANSWER, generate_qa

__all__ = [
    "DEMO_DIR",
    "REFUSAL_ANSWER",
    "demo_path",
    "generate_claims",
    "generate_qa",
    "inject_label_noise",
    "write_demo_assets",
]
