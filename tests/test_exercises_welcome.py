"""Chapter 00's exercise checkers accept a right answer and reject the usual wrong ones with a hint."""
import math

import pytest
import torch

from genai_lib.exercises import ExerciseError
from genai_lib.exercises import welcome as ex


def test_gaussian_nll_checker():
    ex.check_gaussian_nll(lambda x, mu, s: (0.5 * math.log(2 * math.pi) + math.log(s)
                                            + (x - mu) ** 2 / (2 * s**2)).mean())
    with pytest.raises(ExerciseError, match="constant is missing"):
        ex.check_gaussian_nll(lambda x, mu, s: (math.log(s) + (x - mu) ** 2 / (2 * s**2)).mean())
    with pytest.raises(ExerciseError, match="not a variance"):  # sigma used as a variance
        ex.check_gaussian_nll(lambda x, mu, s: (0.5 * math.log(2 * math.pi * s) + (x - mu) ** 2 / (2 * s)).mean())


def sample(weights, means, stds, n, generator, pick_uniformly=False):
    probs = torch.ones_like(weights) / len(weights) if pick_uniformly else weights
    k = torch.multinomial(probs, n, replacement=True, generator=generator)
    return means[k] + stds[k] * torch.randn(n, generator=generator)


def test_sample_mixture_checker():
    ex.check_sample_mixture(sample)
    with pytest.raises(ExerciseError, match="probability pi_k"):  # components chosen uniformly
        ex.check_sample_mixture(lambda *a: sample(*a, pick_uniformly=True))
    with pytest.raises(ExerciseError, match="Scale the noise"):  # noise not scaled
        ex.check_sample_mixture(lambda w, m, s, n, g: sample(w, m, torch.ones_like(s), n, g))


def test_mixture_log_prob_checker():
    def right(x, w, m, s):
        return torch.logsumexp(torch.distributions.Normal(m, s).log_prob(x[:, None]) + w.log(), dim=1)
    ex.check_mixture_log_prob(right)
    with pytest.raises(ExerciseError, match="logsumexp"):  # log of a sum of densities: -inf far away
        ex.check_mixture_log_prob(lambda x, w, m, s: (torch.distributions.Normal(m, s).log_prob(x[:, None]).exp()
                                                      * w).sum(1).log())
    with pytest.raises(ExerciseError, match="not a sum of their logs"):
        ex.check_mixture_log_prob(lambda x, w, m, s: (torch.distributions.Normal(m, s).log_prob(x[:, None])
                                                      + w.log()).sum(1))
