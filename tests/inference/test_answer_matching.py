import pytest

from halluscope.inference.matching import answer_matches, normalize_answer


def test_normalize_drops_case_punctuation_and_articles():
    assert normalize_answer("  The  Weirvaen Looms, Ltd.! ") == "weirvaen looms ltd"


@pytest.mark.parametrize(
    ("answer", "reference"),
    [
        ("Weirvaen Looms", "Weirvaen Looms"),
        ("It was owned by Weirvaen Looms.", "Weirvaen Looms"),
        ("weirvaen looms", "The Weirvaen Looms"),
        ("In 1904.", "1904"),
        ("The context does not say.", "The context does not say."),
    ],
)
def test_matching_answers(answer, reference):
    assert answer_matches(answer, reference)


@pytest.mark.parametrize(
    ("answer", "reference"),
    [
        ("Venstead", "Vaenstead"),
        ("In 19045.", "1904"),
        ("Looms", "Weirvaen Looms"),
        ("The context does not say.", "Weirvaen Looms"),
    ],
)
def test_differing_answers(answer, reference):
    assert not answer_matches(answer, reference)


def test_empty_reference_is_rejected():
    with pytest.raises(ValueError, match="reference answer '...' is empty"):
        answer_matches("anything", "...")
