"""assert_close / assert_equal: the failure message is the feedback every student reads.

Each test states what the student returned, what the reference returned, and the sentence
the student should see. A comparison that cannot be made must still fail as an
AssertionError with such a sentence: any other exception reaches the student as "the
returned value could not be used: IndexError: too many indices ...", naming no values.
"""

import numpy as np
import pytest
import torch

from autograder.harness.compare import (BFLOAT16, EXACT, FLOAT16, FLOAT32, FLOAT64, Tolerance, assert_close,
                                        assert_equal, tolerance_for)


def message_of(actual, expected, what="result", **options) -> str:
    """The sentence a student reads when `actual` is compared with `expected`."""
    with pytest.raises(AssertionError) as failure:
        assert_close(actual, expected, what, **options)
    return str(failure.value)


def equal_message_of(actual, expected, what="result") -> str:
    with pytest.raises(AssertionError) as failure:
        assert_equal(actual, expected, what)
    return str(failure.value)


# --------------------------------------------------------------------------- passing cases


@pytest.mark.parametrize("actual, expected", [
    (np.array([1.0, 2.0]), np.array([1.0, 2.0])),
    ([1.0, 2.0], np.array([1.0, 2.0])),                         # a list numpy turns into the same shape
    ((1.0, 2.0), np.array([1.0, 2.0])),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])),
    (np.float32(1.5), 1.5),                                     # numpy scalars are numbers
    (np.array(1.5), 1.5),                                       # a 0-d array is a scalar
    (np.array([1.5]), 1.5),                                     # so is a one-element array
    (torch.tensor(1.5, dtype=torch.float64), 1.5),              # and a one-element tensor
    (torch.tensor([3]), 3),
    (3.0, 3),                                                   # an integral float equals the int
    ((1.0, {"m": 2.0}), [1.0, {"m": 2.0}]),                     # a tuple where a list is expected
    (torch.tensor([1.0], requires_grad=True), torch.tensor([1.0])),
])
def test_equal_values_in_any_accepted_form_pass(actual, expected):
    assert_close(actual, expected, "result")


def test_the_tolerance_is_atol_plus_rtol_times_the_expected_magnitude():
    tol = Tolerance(rtol=1e-3, atol=1e-2)
    bound = 1e-2 + 1e-3 * 100.0                                 # 0.11 around an expected 100
    assert_close(100.0 + 0.999 * bound, 100.0, "x", tol=tol)
    assert_close(100.0 - 0.999 * bound, 100.0, "x", tol=tol)
    assert "beyond rtol=0.001, atol=0.01" in message_of(100.0 + 1.001 * bound, 100.0, tol=tol)


def test_the_relative_part_scales_with_the_expected_value_not_the_students():
    tol = Tolerance(rtol=0.5, atol=0.0)
    assert_close(1.4, 1.0, "x", tol=tol)                        # |0.4| <= 0.5 * |1.0|
    message_of(1.0, 0.6, tol=tol)                               # |0.4| >  0.5 * |0.6|


def test_float32_differences_of_a_few_ulps_pass_and_larger_ones_fail():
    expected = np.linspace(-3, 3, 7, dtype=np.float32)
    assert_close(expected + np.float32(1e-7) * expected, expected, "x")
    assert "rtol=1e-05, atol=1e-06" in message_of(expected * np.float32(1.001), expected)


def test_float16_and_bfloat16_tensors_use_their_own_looser_tolerances():
    assert_close(torch.tensor([1.0, 2.0], dtype=torch.float16), torch.tensor([1.0, 2.0015], dtype=torch.float16), "x")
    assert_close(torch.tensor([1.0, 2.02], dtype=torch.bfloat16), torch.tensor([1.0, 2.0], dtype=torch.bfloat16), "x")
    text = message_of(torch.tensor([1.0, 2.1], dtype=torch.bfloat16), torch.tensor([1.0, 2.0], dtype=torch.bfloat16))
    assert text == ("result: 1 of 2 entries differ beyond rtol=0.016, atol=0.01; worst at index (1,): "
                    "got 2.09375, expected 2 (abs error 0.09375)")


@pytest.mark.parametrize("dtype, tol", [
    ("float64", FLOAT64), (np.dtype("float64"), FLOAT64), (torch.float64, FLOAT64), (torch.double, FLOAT64),
    (np.dtype("float32"), FLOAT32), (torch.float32, FLOAT32),
    (torch.float16, FLOAT16), (np.float16().dtype, FLOAT16), (torch.bfloat16, BFLOAT16),
    (np.int64().dtype, EXACT), (torch.int32, EXACT), (torch.bool, EXACT),
])
def test_each_dtype_has_its_named_tolerance(dtype, tol):
    assert tolerance_for(dtype) == tol


def test_a_tolerance_prints_as_the_student_reads_it():
    assert str(FLOAT32) == "rtol=1e-05, atol=1e-06"


# --------------------------------------------------------------------------- the worst entry


def test_a_mismatch_names_the_count_the_worst_index_both_values_and_the_error():
    actual = np.array([[1.0, 2.0], [3.0, 4.5]])
    expected = np.array([[1.0, 2.1], [3.0, 4.0]])
    assert message_of(actual, expected, "logits") == (
        "logits: 2 of 4 entries differ beyond rtol=1e-10, atol=1e-12; worst at index (1, 1): "
        "got 4.5, expected 4 (abs error 0.5)")


def test_a_scalar_mismatch_has_no_index():
    assert message_of(0.25, 0.5, "loss") == (
        "loss: 1 of 1 entries differ beyond rtol=1e-10, atol=1e-12; worst: got 0.25, expected 0.5 (abs error 0.25)")


def test_values_are_printed_with_ten_significant_digits():
    text = message_of(1 / 3, 0.3, "p")
    assert "got 0.3333333333, expected 0.3 (abs error 0.03333333333)" in text


def test_a_nan_where_a_number_was_expected_is_named_and_is_the_worst_entry():
    text = message_of(np.array([1.5, np.nan, 3.0]), np.array([1.0, 2.0, 3.0]), "grad")
    assert "2 of 3 entries differ" in text
    assert "worst at index (1,): got nan, expected 2 (abs error inf)" in text


def test_a_number_where_nan_was_expected_fails():
    assert "got 1, expected nan" in message_of(1.0, float("nan"))


def test_nan_matches_nan_only_with_equal_nan():
    assert "got nan, expected nan" in message_of(float("nan"), float("nan"))
    assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), "x", equal_nan=True)


def test_infinities_must_match_in_sign():
    assert_close(np.array([np.inf, -np.inf]), np.array([np.inf, -np.inf]), "x")
    assert "got -inf, expected inf (abs error inf)" in message_of(-np.inf, np.inf)
    assert "got 1e+308, expected inf" in message_of(1e308, np.inf)


# --------------------------------------------------------------------------- type, shape, dtype


@pytest.mark.parametrize("actual, expected, sentence", [
    (np.zeros(3), torch.zeros(3),
     "expected a tensor of shape (3,) and dtype torch.float32, got array of shape (3,) and dtype float64"),
    (torch.zeros(3), np.zeros(3),
     "expected a numpy array of shape (3,) and dtype float64, got tensor of shape (3,) and dtype torch.float32"),
    (None, 1.0, "expected a number, got NoneType None"),
    ("0.5", 0.5, "expected a number, got str '0.5'"),
    (np.zeros(3), 0.0, "expected a scalar, got array of shape (3,) and dtype float64"),
    (torch.zeros(2, 2), 0.0, "expected a scalar, got tensor of shape (2, 2) and dtype torch.float32"),
    ([1.0], {"b": 1.0}, "expected a dict, got list [1.0]"),
    (np.zeros(2), [0.0, 0.0], "expected a list of 2 values, got array of shape (2,) and dtype float64"),
    ({"w": 1.0}, {"w": 1.0, "b": 0.0}, "expected keys ['b', 'w'], got ['w']"),
    ([0.0], (0.0, 0.0), "expected 2 values, got 1"),
])
def test_a_value_of_the_wrong_kind_is_described_not_compared(actual, expected, sentence):
    assert message_of(actual, expected, "out") == f"out: {sentence}"


def test_a_long_wrong_value_is_cut_to_sixty_characters():
    assert message_of("x" * 100, 0.0) == f"result: expected a number, got str '{'x' * 59}..."


@pytest.mark.parametrize("actual, expected, sentence", [
    (np.zeros(3), np.zeros(2), "expected shape (2,), got (3,)"),
    ([1.0, 2.0], np.zeros(3), "expected shape (3,), got (2,)"),
    (3.0, np.zeros(3), "expected shape (3,), got ()"),
    (torch.zeros(2, 3), torch.zeros(3, 2), "expected shape (3, 2), got (2, 3)"),
])
def test_a_wrong_shape_names_both_shapes(actual, expected, sentence):
    assert message_of(actual, expected) == f"result: {sentence}"


def test_a_wrong_dtype_is_named_for_arrays_and_tensors():
    assert message_of(np.zeros(2, np.float32), np.zeros(2)) == "result: expected dtype float64, got float32"
    assert message_of(np.zeros(2, np.int64), np.zeros(2)) == "result: expected dtype float64, got int64"
    assert message_of(torch.zeros(2), torch.zeros(2, dtype=torch.float64)) == \
        "result: expected dtype torch.float64, got torch.float32"


def test_check_dtype_false_compares_values_across_dtypes():
    assert_close(np.ones(2, np.float32), np.ones(2), "x", check_dtype=False)
    assert_close(torch.ones(2, dtype=torch.float16), torch.ones(2, dtype=torch.bfloat16), "x", check_dtype=False)


# --------------------------------------------------------------------------- bools and integers


def test_a_bool_is_not_an_int_either_way():
    assert message_of(True, 1, "count") == "count: expected 1, got bool True"
    assert message_of(1, True, "flag") == "flag: expected True, got int 1"


def test_integers_are_compared_exactly():
    assert "1 of 3 entries differ; first at index (2,)" in message_of(np.array([1, 2, 4]), np.array([1, 2, 3]))
    assert "entries differ" in message_of(torch.tensor([7]), torch.tensor([8]))
    assert "entries differ" in message_of(2**53 + 1, 2**53)


def test_a_custom_tolerance_makes_integer_arrays_approximate():
    assert_close(np.array([100, 200]), np.array([101, 200]), "x", tol=Tolerance(rtol=0.02, atol=0))


def test_an_integer_mismatch_prints_plain_numbers():
    assert message_of(np.array([1, 2, 4]), np.array([1, 2, 3]), "labels") == (
        "labels: 1 of 3 entries differ; first at index (2,): got 4, expected 3")
    assert message_of(torch.tensor([True, False]), torch.tensor([True, True]), "mask").endswith(
        "got False, expected True")


def test_a_scalar_integer_mismatch_reads_like_a_scalar_float_mismatch():
    text = message_of(3.5, 3, "count")
    assert "index" not in text
    assert text.endswith("got 3.5, expected 3")


def test_a_numpy_bool_counts_as_a_bool():
    assert_close(np.True_, True, "is_done")
    assert_close(True, np.True_, "is_done")


# --------------------------------------------------------------------------- nested containers


def test_nested_paths_name_the_entry_that_differs():
    text = message_of([{"m": np.array([1.0, 2.0])}], [{"m": np.array([1.0, 3.0])}], "state")
    assert text.startswith("state[0]['m']: 1 of 2 entries differ")
    assert message_of({"layers": (1.0, [2.0])}, {"layers": (1.0, [2.5])}, "p").startswith("p['layers'][1][0]: ")


def test_options_reach_nested_entries():
    assert_close({"a": [np.nan]}, {"a": [np.nan]}, "x", equal_nan=True)
    assert_close([1.05], [1.0], "x", tol=Tolerance(rtol=0.1, atol=0))
    assert_close({"a": np.ones(1, np.float32)}, {"a": np.ones(1)}, "x", check_dtype=False)


# --------------------------------------------------------------------------- values that cannot be compared


def test_a_wrong_one_element_array_for_an_int_fails_with_the_values():
    assert message_of(np.array([4]), 3).endswith("got 4, expected 3")
    assert message_of(torch.tensor([4]), 3).endswith("got 4, expected 3")


def test_a_wrong_one_element_array_for_a_float_fails_with_the_values():
    assert "got 4, expected 3" in message_of(np.array([4.0]), 3.0)
    assert "got 4, expected 3" in message_of(torch.tensor([4.0]), 3.0)


def test_a_list_of_strings_for_an_array_fails():
    message_of(["a", "b"], np.array([1.0, 2.0]))


def test_a_ragged_list_for_an_array_fails():
    message_of([[1.0, 2.0], [3.0]], np.zeros((2, 2)))


def test_a_list_of_none_is_not_reported_as_nan():
    assert "nan" not in message_of([None, None], np.array([1.0, 2.0]))


# --------------------------------------------------------------------------- assert_equal


def test_assert_equal_passes_equal_nested_values():
    assert_equal((1, [2, "a"], {"k": True}), [1, (2, "a"), {"k": True}], "x")
    assert_equal(np.array([1, 2]), np.array([1, 2]), "x")
    assert_equal(np.int64(3), 3, "x")


def test_assert_equal_names_the_path_and_both_values():
    assert equal_message_of((1, [2, 3]), [1, [2, 4]], "pairs") == "pairs[1][1]: expected 4, got 3"
    assert equal_message_of({"k": "b"}, {"k": "a"}, "d") == "d['k']: expected 'a', got 'b'"
    assert equal_message_of({"j": 1}, {"k": 1}, "d") == "d: expected keys ['k'], got {'j': 1}"
    assert equal_message_of([1], [1, 2], "xs") == "xs: expected [1, 2], got [1]"


def test_assert_equal_compares_arrays_exactly_with_their_dtype():
    assert equal_message_of(np.array([1.0, 2.0]), np.array([1, 2])) == "result: expected dtype int64, got float64"
    assert "first at index (1,)" in equal_message_of(np.array([1, 2]), np.array([1, 3]))
    assert "entries differ" in equal_message_of(np.array([0.1 + 0.2]), np.array([0.3]))


def test_assert_equal_refuses_a_bool_for_an_int():
    assert equal_message_of(True, 1, "n") == "n: expected 1, got True"


def test_assert_equal_refuses_an_int_for_a_bool():
    assert equal_message_of(1, True, "flag") == "flag: expected True, got 1"


def test_assert_equal_fails_an_array_returned_for_a_scalar():
    assert equal_message_of(np.array([3, 4]), 3, "n").startswith("n: expected 3, got ")
    assert equal_message_of(torch.tensor([3, 4]), 3, "n").startswith("n: expected 3, got ")
