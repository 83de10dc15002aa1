"""A Gaussian mixture: the simplest density model that can be trained by gradient descent.

    p(x) = sum_k pi_k * N(x; mu_k, Sigma_k),   Sigma_k = L_k L_k^T

Each covariance is stored through its Cholesky factor ``L_k`` (lower
triangular, positive diagonal), so every parameter value gives a valid
covariance and plain gradient descent cannot break the model.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class GaussianMixture(nn.Module):
    """A mixture of ``n_components`` full-covariance Gaussians in ``dim`` dimensions."""

    def __init__(self, n_components: int, dim: int = 2):
        super().__init__()
        self.n_components, self.dim = n_components, dim
        self.logits = nn.Parameter(torch.zeros(n_components))  # mixture weights, before softmax
        self.means = nn.Parameter(torch.randn(n_components, dim))
        self.tril = nn.Parameter(torch.zeros(n_components, dim, dim))  # below-diagonal part of L
        self.log_diag = nn.Parameter(torch.zeros(n_components, dim))  # log of L's diagonal

    @torch.no_grad()
    def init_from(self, x: Tensor) -> GaussianMixture:
        """Start each component on a random data point, with the data's overall spread."""
        idx = torch.randperm(len(x))[: self.n_components]
        self.means.copy_(x[idx])
        self.log_diag.fill_(math.log(x.std(0).mean().item() / 2))
        return self

    def scale_tril(self) -> Tensor:
        """The Cholesky factors ``L_k``, shape ``(K, dim, dim)``."""
        return torch.tril(self.tril, diagonal=-1) + torch.diag_embed(self.log_diag.exp())

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats, for ``x`` of shape ``(N, dim)``; returns shape ``(N,)``."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"GaussianMixture(dim={self.dim}) expects points of shape (N, {self.dim}); "
                f"got {tuple(x.shape)}."
            )
        L = self.scale_tril()  # (K, d, d)
        diff = x[:, None, :] - self.means  # (N, K, d)
        # Solve L z = diff, so that |z|^2 = diff^T Sigma^-1 diff (the Mahalanobis distance)
        z = torch.linalg.solve_triangular(L, diff.unsqueeze(-1), upper=False).squeeze(-1)
        mahalanobis = z.pow(2).sum(-1)  # (N, K)
        log_det = 2 * self.log_diag.sum(-1)  # log |Sigma_k| = 2 sum log diag L
        log_normal = -0.5 * (self.dim * math.log(2 * math.pi) + log_det + mahalanobis)
        return torch.logsumexp(F.log_softmax(self.logits, dim=0) + log_normal, dim=1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` points: pick a component by its weight, then x = mu + L eps."""
        weights = F.softmax(self.logits, dim=0)
        k = torch.multinomial(weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, 1, generator=generator, device=self.means.device)
        return self.means[k] + (self.scale_tril()[k] @ eps).squeeze(-1)
