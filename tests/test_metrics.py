import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segdeploy.metrics import Agreement, ConfusionMatrix


def test_hand_computed_case():
    reference = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    prediction = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])
    matrix = ConfusionMatrix(4, ignore_index=255).update(prediction, reference)
    # class 0: tp 1, fp 1 (pixel (1,1)), fn 1 -> 1/3; class 1: tp 3, fp 1, fn 0 -> 3/4;
    # class 2: tp 1, fn 1 -> 1/2; class 3 absent from both -> excluded.
    np.testing.assert_allclose(matrix.iou()[:3], [1 / 3, 3 / 4, 1 / 2])
    assert np.isnan(matrix.iou()[3])
    assert matrix.miou() == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert matrix.pixel_accuracy() == pytest.approx(5 / 7)  # the ignored pixel does not count


def test_whole_split_differs_from_mean_of_per_image_scores():
    images = [(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])), (np.array([1, 1]), np.array([1, 0]))]
    split = ConfusionMatrix(2)
    per_image = []
    for prediction, reference in images:
        split.update(prediction, reference)
        per_image.append(ConfusionMatrix(2).update(prediction, reference).miou())
    assert split.miou() == pytest.approx((3 / 5 + 1 / 3) / 2)
    assert split.miou() != pytest.approx(np.mean(per_image))


def _slow_miou(prediction, reference, classes, ignore):
    ious = []
    for c in range(classes):
        keep = reference != ignore
        p, r = (prediction == c) & keep, (reference == c) & keep
        union = (p | r).sum()
        if union:
            ious.append((p & r).sum() / union)
    return np.mean(ious) if ious else np.nan


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20)), elements=st.integers(0, 5)),
       st.integers(0, 2**31 - 1))
def test_matches_an_independent_slow_implementation(reference, seed):
    reference = np.where(reference == 5, 255, reference)  # some ignored pixels
    prediction = np.random.default_rng(seed).integers(0, 5, reference.shape)
    fast = ConfusionMatrix(5, ignore_index=255).update(prediction, reference).miou()
    slow = _slow_miou(prediction, reference, 5, 255)
    assert (np.isnan(fast) and np.isnan(slow)) or fast == pytest.approx(slow)


def test_agreement_on_labelled_and_unlabelled_pixels():
    a, b = np.array([0, 1, 2, 3]), np.array([0, 1, 0, 0])
    assert Agreement(4).update(a, b) == 0.5
    labelled = Agreement(4, ignore_index=255)
    assert labelled.update(a, b, labels=np.array([0, 1, 2, 255])) == pytest.approx(2 / 3)
    assert np.isnan(labelled.update(a, b, labels=np.full(4, 255)))  # every pixel ignored: no verdict


def test_agreement_accumulates_over_images():
    agreement = Agreement(3)
    agreement.update(np.array([0, 1]), np.array([0, 1]))
    agreement.update(np.array([2, 2]), np.array([2, 0]))
    assert agreement.pixel == pytest.approx(3 / 4)
    # reference as truth: class 0 IoU 1/2, class 1 1, class 2 1/2
    assert agreement.miou == pytest.approx((0.5 + 1 + 0.5) / 3)
