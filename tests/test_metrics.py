"""Every metric against values computed by hand, also through the local `evaluate` module."""

import math

import evaluate
import numpy as np
import pytest
from transformers import EvalPrediction

import gia_mic
from gia_mic.calibration import expected_calibration_error, fit_temperature, softmax, uncertainty_threshold
from gia_mic.metrics import build_compute_metrics, classification_metrics, regression_metrics


LABELS = [0, 0, 1, 1, 1, 2]
PREDICTIONS = [0, 1, 1, 1, 0, 2]  # class 3 of 4 never appears


def test_classification_by_hand():
    m = classification_metrics(np.array(PREDICTIONS), np.array(LABELS), num_labels=4)
    assert m["wa"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # recall of classes 0, 1, 2; class 3 has none
    # F1: class 0 P=1/2 R=1/2 -> 1/2; class 1 P=2/3 R=2/3 -> 2/3; class 2 -> 1
    assert m["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["weighted_f1"] == pytest.approx((1 / 2 * 2 + 2 / 3 * 3 + 1 * 1) / 6)
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_a_class_predicted_but_never_true_lowers_macro_f1_not_ua():
    predictions = [0, 1, 1, 1, 3, 2]
    m = classification_metrics(np.array(predictions), np.array(LABELS), num_labels=4)
    # class 0: P=1, R=1/2 -> 2/3; class 1: 2/3; class 2: 1; class 3: P=0 -> 0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1 + 0) / 4)
    assert m["ua"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["confusion_matrix"][0] == [1, 1, 0, 0] and m["confusion_matrix"][1] == [0, 2, 0, 1]


def test_logits_are_turned_into_classes():
    logits = np.eye(4)[PREDICTIONS] * 3.0 - 1.0
    assert classification_metrics(logits, np.array(LABELS), 4)["wa"] == pytest.approx(4 / 6)


PRED = np.array([2.6, -0.4, -0.3, -3.5, 1.4])
TRUE = np.array([3.0, -1.0, 0.0, -2.2, 0.4])


def test_regression_by_hand():
    m = regression_metrics(PRED, TRUE)
    assert m["mae"] == pytest.approx((0.4 + 0.6 + 0.3 + 1.3 + 1.0) / 5)
    pred_c, true_c = PRED - PRED.mean(), TRUE - TRUE.mean()
    assert m["corr"] == pytest.approx((pred_c * true_c).sum() / math.sqrt((pred_c**2).sum() * (true_c**2).sum()))
    # Acc-7: rounded [3, -0, -0, -3, 1] vs [3, -1, 0, -2, 0] -> 2 of 5
    assert m["acc7"] == pytest.approx(2 / 5)
    # Acc-5: clipped to [-2, 2] and rounded [2, -0, -0, -2, 1] vs [2, -1, 0, -2, 0] -> 3 of 5
    assert m["acc5"] == pytest.approx(3 / 5)
    # has0: non-negative? true [T F T F T], pred [T F F F T] -> 4/5; weighted F1: both classes 0.8
    assert m["acc2_has0"] == pytest.approx(4 / 5) and m["f1_has0"] == pytest.approx(0.8)
    # non0 drops the zero label: true [T F F T] vs pred [T F F T]
    assert m["acc2_non0"] == 1.0 and m["f1_non0"] == 1.0


def test_trainer_compute_metrics_takes_model_output_tuples():
    logits = np.eye(4)[PREDICTIONS]
    compute = build_compute_metrics(num_labels=4, regression=False)
    metrics = compute(EvalPrediction(predictions=(logits, np.zeros((6, 2))), label_ids=np.array(LABELS)))
    assert set(metrics) == {"wa", "ua", "macro_f1", "weighted_f1", "ece"}
    assert metrics["wa"] == pytest.approx(4 / 6), "the logits are the first element of the model's output tuple"
    regression = build_compute_metrics(num_labels=1, regression=True)
    assert regression(EvalPrediction(predictions=PRED[:, None], label_ids=TRUE))["acc7"] == pytest.approx(0.4)


def test_local_evaluate_module_gives_the_same_numbers():
    classification = evaluate.load(gia_mic.EVALUATE_MODULE, config_name="classification")
    result = classification.compute(predictions=PREDICTIONS, references=LABELS, num_labels=4)
    assert result == classification_metrics(np.array(PREDICTIONS), np.array(LABELS), 4)
    regression = evaluate.load(gia_mic.EVALUATE_MODULE, config_name="regression")
    result = regression.compute(predictions=PRED.tolist(), references=TRUE.tolist())
    assert result["mae"] == pytest.approx(regression_metrics(PRED, TRUE)["mae"], rel=1e-6)


def test_mosi_metrics_at_every_boundary():
    """Zero labels, predictions at +-0.5 (numpy rounds half to even, as MMSA does) and beyond +-3, by hand."""
    labels = np.array([0.0, 0.0, 3.0, -3.0, 1.5, -0.4, 2.5])
    predictions = np.array([0.5, -0.5, 4.2, -7.0, 1.5, 0.4, 2.4])
    m = regression_metrics(predictions, labels)
    # Acc-7: clip to [-3, 3] and round: pred [0, -0, 3, -3, 2, 0, 2] vs true [0, 0, 3, -3, 2, -0, 2] -> 7 of 7
    assert m["acc7"] == pytest.approx(7 / 7)
    # Acc-5: clip to [-2, 2]: pred [0, -0, 2, -2, 2, 0, 2] vs true [0, 0, 2, -2, 2, -0, 2] -> 7 of 7
    assert m["acc5"] == pytest.approx(7 / 7)
    # has0 (>= 0 vs < 0): true [T T T F T F T], pred [T F T F T T T] -> 5 of 7
    assert m["acc2_has0"] == pytest.approx(5 / 7)
    # non0 drops the two zero labels: true [T F T F T], pred [T F T T T] -> 4 of 5 (keeping them: 5 of 7)
    assert m["acc2_non0"] == pytest.approx(4 / 5)
    # weighted F1 of non0: positives P=3/4 R=1 -> 6/7 (support 3), negatives P=1 R=1/2 -> 2/3 (support 2)
    assert m["f1_non0"] == pytest.approx((3 * 6 / 7 + 2 * 2 / 3) / 5)
    assert m["mae"] == pytest.approx(np.mean([0.5, 0.5, 1.2, 4.0, 0.0, 0.8, 0.1]))


def test_a_class_absent_from_the_predictions_counts_as_zero_recall():
    labels, predictions = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 1, 0])
    m = classification_metrics(predictions, labels, num_labels=3)
    assert m["ua"] == pytest.approx((1 + 1 + 0) / 3) and m["wa"] == pytest.approx(4 / 6)
    # F1: class 0 P=2/3 R=1 -> 4/5; class 1 P=2/3 R=1 -> 4/5; class 2 never predicted -> 0
    assert m["macro_f1"] == pytest.approx((4 / 5 + 4 / 5 + 0) / 3)
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [1, 1, 0]]


def test_mosi_metrics_tell_every_convention_apart():
    """A prediction of exactly 0, labels between 0 and 1, spreads under 1: each convention gives its own number."""
    labels = np.array([0.6, -1.0, 0.0, 1.2, -0.3, 0.5, 0.4])
    predictions = np.array([0.0, -0.8, 0.3, 0.2, -0.1, 0.9, -0.2])
    m = regression_metrics(predictions, labels)
    # has0: true >= 0 [T F T T F T T], predicted >= 0 [T F T T F T F] -> 6 of 7
    assert m["acc2_has0"] == pytest.approx(6 / 7)
    # weighted F1: non-negative (5) P=1 R=4/5 -> 8/9; negative (2) P=2/3 R=1 -> 4/5 (binary F1 alone would be 8/9)
    assert m["f1_has0"] == pytest.approx((5 * 8 / 9 + 2 * 4 / 5) / 7)
    # non0 drops the 0.0 label: true > 0 [T F T F T T], predicted > 0 [F F T F T F] (0.0 is not positive) -> 4 of 6
    assert m["acc2_non0"] == pytest.approx(4 / 6)
    # weighted F1: positive (4) P=1 R=1/2 -> 2/3; negative (2) P=1/2 R=1 -> 2/3
    assert m["f1_non0"] == pytest.approx(2 / 3)
    centred_p, centred_t = predictions - predictions.mean(), labels - labels.mean()
    expected_r = (centred_p * centred_t).sum() / math.sqrt((centred_p**2).sum() * (centred_t**2).sum())
    assert predictions.std() < 1 and labels.std() < 1 and m["corr"] == pytest.approx(expected_r)


def test_correlation_of_a_constant_prediction_is_zero_not_nan():
    assert regression_metrics(np.zeros(4), np.array([1.0, -1.0, 2.0, 0.5]))["corr"] == 0.0
    assert regression_metrics(np.array([1.0, -1.0, 2.0, 0.5]), np.full(4, 0.5))["corr"] == 0.0


def test_regression_metrics_take_column_vectors_as_the_model_returns_them():
    column = regression_metrics(PRED[:, None], TRUE[:, None])
    assert column == regression_metrics(PRED, TRUE)


# CH-SIMS, MMSA's bins (closed on the right): 2 classes [-1, 0], (0, 1]; 3: [-1, -0.1], (-0.1, 0.1], (0.1, 1];
# 5: [-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1]. Several values sit exactly on an edge.
SIMS_LABELS = np.array([-1.0, -0.7, -0.5, -0.1, 0.0, 0.05, 0.1, 0.4, 0.7, 1.0], dtype=np.float32)
SIMS_PREDICTIONS = np.array([-0.8, -0.6, -0.1, 0.0, 0.2, 0.1, -0.2, 0.9, 1.5, 0.6], dtype=np.float32)


def test_sims_metrics_by_hand():
    m = gia_mic.metrics.sims_metrics(SIMS_PREDICTIONS, SIMS_LABELS)
    # labels -> 2 classes 0 0 0 0 0 1 1 1 1 1; predictions 0 0 0 0 1 1 0 1 1 1
    assert m["acc2"] == pytest.approx(8 / 10)
    # labels -> 0 0 0 0 1 1 1 2 2 2; predictions 0 0 0 1 2 1 0 2 2 2
    assert m["acc3"] == pytest.approx(7 / 10)
    # labels -> 0 0 1 1 2 2 2 3 3 4; predictions 0 1 1 2 3 2 1 4 4 3
    assert m["acc5"] == pytest.approx(3 / 10)
    # F1 of the 2 classes: class 0 P=4/5 R=4/5; class 1 P=4/5 R=4/5 -> weighted 0.8
    assert m["f1"] == pytest.approx(0.8)
    clipped = np.clip(SIMS_PREDICTIONS.astype(np.float64), -1, 1)  # 1.5 counts as 1.0
    assert m["mae"] == pytest.approx(np.abs(clipped - SIMS_LABELS).mean(), rel=1e-6)
    assert m["corr"] == pytest.approx(np.corrcoef(clipped, SIMS_LABELS)[0, 1], rel=1e-6)
    through_module = evaluate.load(gia_mic.EVALUATE_MODULE, config_name="sims").compute(
        predictions=SIMS_PREDICTIONS, references=SIMS_LABELS
    )
    assert through_module == pytest.approx(m)


def test_expected_calibration_error_equals_the_one_computed_by_hand():
    """Six items, 15 bins of the top probability: (14/15, 1], (7/15, 8/15] and (8/15, 9/15] hold two items each."""
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.5, 0.5], [0.5, 0.5], [0.45, 0.55], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 1, 1, 1])
    # top probabilities 0.95, 0.95 (one right); 0.5, 0.5 (argmax 0 on a tie: one right); 0.55 (right), 0.6 (wrong)
    by_hand = 2 / 6 * abs(1 / 2 - 0.95) + 2 / 6 * abs(1 / 2 - 0.5) + 2 / 6 * abs(1 / 2 - 0.575)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(by_hand, abs=1e-9)
    assert classification_metrics(np.log(probabilities), labels, 2)["ece"] == pytest.approx(by_hand, abs=1e-9)


def test_a_fitted_temperature_undoes_overconfidence():
    """Logits of a calibrated classifier made 4x too sharp: the fitted temperature is about 4 and the ECE falls."""
    rng = np.random.default_rng(0)
    calibrated = rng.normal(size=(4000, 5))
    labels = np.array([rng.choice(5, p=row) for row in softmax(calibrated)])
    temperature = fit_temperature(4 * calibrated, labels)
    assert temperature == pytest.approx(4.0, rel=0.1)
    before = expected_calibration_error(softmax(4 * calibrated), labels)
    after = expected_calibration_error(softmax(4 * calibrated / temperature), labels)
    assert before > 0.15 and after < 0.03


def test_the_temperature_is_fitted_under_the_models_prior_correction():
    """
    Labels drawn from a balanced classifier's probabilities corrected to other priors: with the correction given,
    the fit finds the 4x sharpening again; without it, the priors' mismatch pulls the temperature away.
    """
    rng = np.random.default_rng(1)
    calibrated = rng.normal(size=(4000, 5))
    adjustment = np.log([0.5, 0.2, 0.1, 0.1, 0.1]) - np.log(0.2)
    labels = np.array([rng.choice(5, p=row) for row in softmax(calibrated + adjustment)])
    assert fit_temperature(4 * calibrated, labels, adjustment) == pytest.approx(4.0, rel=0.1)
    assert fit_temperature(4 * calibrated, labels) != pytest.approx(4.0, rel=0.1)


def test_the_not_sure_threshold_ends_the_least_confident_answers_that_were_mostly_wrong():
    """Top probabilities 0.3 (wrong), 0.35 (right), 0.4 (wrong), 0.6 (right), 0.7 (right): the three least confident
    are right 1/3 of the time, the four 2/4 (not under half): the threshold is the fourth's top probability, 0.6."""
    top = np.array([0.3, 0.35, 0.4, 0.6, 0.7])
    probabilities = np.stack([top, *[(1 - top) / 3] * 3], axis=1)  # class 0 is every answer
    labels = np.array([1, 0, 1, 0, 0])
    assert uncertainty_threshold(probabilities, labels) == pytest.approx(0.6)
    assert uncertainty_threshold(probabilities[3:], labels[3:]) == 0.0


def test_answers_of_equal_confidence_fall_on_one_side_of_the_not_sure_threshold():
    """Two answers at 0.6, one right and one wrong, after a wrong one at 0.4 (1 of 3 right up to there): in either
    order, both are under the threshold, the next top probability."""
    top = np.array([0.4, 0.6, 0.6, 0.9])
    probabilities = np.stack([top, *[(1 - top) / 3] * 3], axis=1)
    one, other = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])
    assert uncertainty_threshold(probabilities, one) == uncertainty_threshold(probabilities, other) == 0.9
