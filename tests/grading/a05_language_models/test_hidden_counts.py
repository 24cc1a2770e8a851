"""Hidden: the bigram model against brute-force counts, under both default dtypes, and perplexity."""
import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import FLOAT32, FLOAT64, assert_close, diagnose, require
from autograder.harness.strategies import hidden_seeds, random_tensor
from oracle import bigram_table, default_dtype, matching_variant, token_streams

alphas = st.sampled_from([1e-3, 0.1, 0.5, 1.0, 2.5])


def explain_bigram(actual, tokens, V, alpha):
    if not isinstance(actual, torch.Tensor) or actual.shape != (V, V):
        return None
    stream = tokens.tolist()
    variants = {
        "the smoothed denominator must be c_i + alpha * V (alpha for each of the V possible next tokens)":
            bigram_table(stream, V, alpha, denominator_alpha=alpha),
        "the table is transposed: row i must be the current token, column j the next one":
            bigram_table(stream, V, alpha, transpose=True),
        "c_i must count the pairs that start with i (sum_j c_ij), not every occurrence of i "
        "(the last token starts no pair)": bigram_table(stream, V, alpha, row_counts="occurrences"),
        "the stream does not wrap around: there is no pair (last token, first token)":
            bigram_table(stream, V, alpha, wrap=True),
    }
    found = matching_variant(actual, variants)
    if found:
        return found
    if bool(torch.isfinite(actual).all()) and not torch.allclose(actual.double().exp().sum(1), torch.ones(V, dtype=torch.float64), atol=1e-4):
        return "every row of exp(table) must sum to 1: check the smoothing of the row totals"
    return None


@given(stream=token_streams(), alpha=alphas)
def test_bigram_matches_brute_force_counts(student, stream, alpha):
    tokens, V = stream
    expected = bigram_table(tokens.tolist(), V, alpha, dtype=torch.float32)
    actual = student.bigram_log_probs(tokens, V, alpha)
    with diagnose(lambda: explain_bigram(actual, tokens, V, alpha)):
        assert_close(actual, expected, "bigram_log_probs on a random token stream", tol=FLOAT32)


@given(V=st.integers(2, 6), alpha=alphas)
def test_bigram_matches_on_short_streams(student, V, alpha):
    """No pair at all (T = 0 or 1) gives the uniform table; one pair changes one row."""
    for tokens in (torch.zeros(0, dtype=torch.int64), torch.tensor([V - 1]), torch.tensor([V - 1, 0])):
        expected = bigram_table(tokens.tolist(), V, alpha, dtype=torch.float32)
        actual = student.bigram_log_probs(tokens, V, alpha)
        with diagnose(lambda: explain_bigram(actual, tokens, V, alpha)):
            assert_close(actual, expected, f"bigram_log_probs on a stream of {len(tokens)} tokens", tol=FLOAT32)


@given(stream=token_streams(max_vocab=6, max_length=40), alpha=alphas, dtype=st.sampled_from([torch.float64, torch.float32]))
def test_bigram_default_dtype_is_followed(student, stream, alpha, dtype):
    tokens, V = stream
    expected = bigram_table(tokens.tolist(), V, alpha, dtype=dtype)
    with default_dtype(student, dtype):
        actual = student.bigram_log_probs(tokens, V, alpha)
    def explain():
        if isinstance(actual, torch.Tensor) and actual.dtype != dtype:
            return "return torch.get_default_dtype() values, whatever dtype you count in"
        return explain_bigram(actual, tokens, V, alpha)

    with diagnose(explain):
        assert_close(actual, expected, f"bigram_log_probs with torch's default dtype {dtype}",
                     tol=FLOAT64 if dtype == torch.float64 else FLOAT32)


# ------------------------------------------------------------------ perplexity

@given(seed=hidden_seeds(), shape=st.sampled_from([(1,), (17,), (3, 5), (2, 3, 4)]),
       dtype=st.sampled_from([torch.float64, torch.float32]), scale=st.sampled_from([0.01, 1.0, 5.0]))
def test_perplexity_matches_exp_mean_nll(student, seed, shape, dtype, scale):
    log_probs = (-random_tensor(seed, shape).abs() * scale).to(dtype)
    expected = math.exp(-float(log_probs.double().mean()))
    actual = student.perplexity(log_probs)
    require(isinstance(actual, (float, int)) or (isinstance(actual, torch.Tensor) and actual.numel() == 1),
            "perplexity should return a number (a Python float)")

    def explain():
        value = float(actual)
        total = -float(log_probs.double().sum())
        if total < 700 and math.isclose(value, math.exp(total), rel_tol=1e-5):
            return "perplexity is exp of the *mean* negative log-likelihood, not of the sum"
        if math.isclose(value, 1.0 / expected, rel_tol=1e-5):
            return "perplexity is exp(-mean(log p)): the sign is flipped"
        if math.isclose(value, -float(log_probs.double().mean()), rel_tol=1e-5):
            return "perplexity is the exponential of the mean negative log-likelihood"
        return None

    with diagnose(explain):
        assert_close(float(actual), expected, f"perplexity of {dtype} log-probabilities",
                     tol=FLOAT64 if dtype == torch.float64 else FLOAT32)
