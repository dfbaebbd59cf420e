"""The homework's questions, one line each, in the homework's order.

Taken from the homework write-up (ECE 8803-GGDL Homework 2,
shared/seeds/000_a053d5d572b4bf22.txt). The registry registers them before any
result; the report has one section per registered question, in registration
order, and places every result and experiment in the section of its
``question`` (:func:`genverify.registry.question_of`: "2b-iii" belongs to
"2b"). ``planned`` says what a section will hold while nothing is registered
for it yet. Users' modules declare ``QUESTIONS`` the same way.
"""

from __future__ import annotations

from genverify.core import Question

#: The homework's questions; ``text`` is LaTeX (inline maths in $...$), compiled by the report's tests.
QUESTIONS: tuple[Question, ...] = (
    Question("1a", "KL divergence is not symmetric",
             r"Give univariate distributions $P$ and $Q$ with $D_{KL}(P\,\|\,Q)$ finite and $D_{KL}(Q\,\|\,P) = \infty$.",
             "the KL divergences of the chosen uniforms in both directions, derived and checked."),
    Question("1b", "Forward and reverse KL fits",
             r"For a fixed target $P$, which of two Gaussian fits $Q$ (only the mean and standard deviation vary) "
             r"minimises the forward KL $D_{KL}(P\,\|\,Q)$ and which the reverse KL $D_{KL}(Q\,\|\,P)$? "
             "Give a brief reasoning.",
             "the forward (mass-covering) and reverse (mode-seeking) KL fits of a Gaussian to a bimodal target, "
             "derived and fitted numerically, with their figures."),
    Question("1c", "The asymmetry of KL in the VAE's ELBO",
             r"What are the implications of the asymmetry of KL for a VAE maximising the ELBO "
             r"$\mathcal{L}(x;\theta,\phi) = \mathbb{E}_{q_\phi(z|x)}[\log p_\theta(x|z)] "
             r"- D_{KL}(q_\phi(z|x)\,\|\,p(z))$?",
             "the Gaussian KL term of the ELBO and the gap between the ELBO and the log evidence."),
    Question("2a", "Mixture of Bernoullis",
             r"Write $P(\mathbf{x}\mid\mathbf{p})$ for a vector of independent Bernoulli pixels, the mixture "
             r"likelihood $P(\mathbf{x}^{(i)}\mid\mathbf{p},\pi)$ of $K$ Bernoulli components, and the log "
             r"likelihood $\log P(X\mid\pi,\mathbf{p})$ of $n$ images.",
             "the Bernoulli, mixture and data log-likelihoods, derived and checked."),
    Question("2b", "Expectation step",
             r"With indicator latents $z^{(i)}$, give $P(z^{(i)}\mid\pi)$, $P(x^{(i)}\mid z^{(i)},p,\pi)$, the "
             r"complete-data likelihood $P(Z,X\mid\pi,p)$, the responsibilities "
             r"$\eta(z_k^{(i)}) = E[z_k^{(i)}\mid x^{(i)},\pi,p]$ and the expected complete-data log likelihood.",
             "the latent prior, the conditional and complete-data likelihoods, the responsibilities and the "
             "expected complete-data log likelihood."),
    Question("2c", "Maximisation step",
             r"Show that the M-step updates are $\hat p^{(k)} = \sum_i \eta(z_k^{(i)})\,x^{(i)} / N_k$ and "
             r"$\hat\pi_k = N_k / \sum_{k'} N_{k'}$, where $N_k = \sum_i \eta(z_k^{(i)})$.",
             "the M-step updates of the Bernoulli parameters and the mixing weights."),
    Question("3", "EM on MNIST",
             r"Cluster $N = 1000$ binarised MNIST digits with EM for $K = 5$, $10$ and $20$, show the learned "
             r"Bernoulli parameters as images, and explain how to generate new images from the fitted mixture.",
             "the EM fits on MNIST: mean images for K = 5, 10, 20, the log likelihood per iteration and samples."),
    Question("4", "NICE versus VAE on MNIST",
             r"Train NICE and a VAE on MNIST (50 epochs, batch 256), show samples of each, and compare them with "
             r"EM-based generation (runtime, expressiveness, simplicity).",
             "samples of the trained NICE and VAE models and the comparison table of NICE, VAE and EM."),
    Question("5a", "Reciprocal of a Cauchy variable",
             r"$X$ is standard Cauchy, $f_X(x) = \frac{1}{\pi(1 + x^2)}$: find the density of $Y = 1/X$.",
             "the change-of-variables density of 1/X."),
    Question("5b", "Exponential of a normal variable",
             r"$Y$ is normal with parameters $\mu$ and $\sigma$: find the density of $e^Y$.",
             "the change-of-variables density of e^Y (the log-normal density)."),
    Question("5c", "Distance from the centre of a square",
             r"$P$ is uniform on $[0, 2]^2$ and $Z$ is its distance from $(1, 1)$: find the density of $Z$.",
             "the piecewise cdf and density of the distance, from the geometry of disc and square."),
    Question("6", "Jacobian of the Leaky-ReLU flow",
             r"Give the inverse of the Leaky ReLU (slope $0.1$ for $z < 0$) and the inverse absolute determinant "
             r"$\left|\det \frac{\partial f[z]}{\partial z}\right|^{-1}$ of the elementwise Leaky-ReLU flow $x = f[z]$.",
             "the inverse of the Leaky ReLU and its (log) absolute Jacobian determinant."),
)
