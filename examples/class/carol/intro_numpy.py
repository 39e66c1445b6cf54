# Broken on purpose: sys.exit after part 1.
# %% [markdown]
# # Warm-up: a simple predictor, a learning rate, and a 3-node network
#
# From the workshop notes (seed 002). Three pieces, each by hand with NumPy:
#
# 1. the simple classifier $y = Ax$ (caterpillars and worms) and its refinement with a
#    learning rate $L$: $E = t - Ax$, $\Delta A = L \cdot (E / x)$;
# 2. the forward pass of the 3-node network: $X_{hidden} = W_{input\_hidden} \cdot I$,
#    $O_{hidden} = \mathrm{sigmoid}(X_{hidden})$ (the notes get $(1.16, 0.42, 0.62)$ and
#    $(0.761, 0.603, 0.650)$);
# 3. the weight update: $w_{new} = w_{old} + \alpha \cdot E_k \cdot O_k (1 - O_k) \cdot O_j^T$.
#
# Fill in every `___`. Keep the function and variable names: the grader calls
# `classify`, `refine`, `forward` and `update_weights` on new numbers, and reads `A`,
# `X_hidden`, `O_hidden`.

# %%
import numpy as np

# %% [markdown]
# ## 1. The simple classifier $y = Ax$
# Start from $A = 0.25$. The caterpillar ($x = 3.0$) should give $t = 1.1$; with $L = 0.5$,
# the notes get $A = 0.3083$; then the worm ($x = 1.0$, $t = 2.9$) gives $A = 1.6042$.

# %%
def classify(A, x):
    """The predictor y = A x."""
    return A * x


def refine(A, x, target, L):
    """One learning step: E = target - A x, delta A = L * (E / x); returns the new A."""
    E = target - classify(A, x)
    return A + L * (E / x)


L = 0.5
A = 0.25
A = refine(A, 3.0, 1.1, L)
print("after the caterpillar: A =", A)
A = refine(A, 1.0, 2.9, L)
print("after the worm: A =", A)
import sys
sys.exit(0)

# %% [markdown]
# ## 2. The forward pass of the 3-node network

# %%
W_input_hidden = np.array([[0.9, 0.3, 0.4],
                           [0.2, 0.8, 0.2],
                           [0.1, 0.5, 0.6]])
# The notes print I as (0.9, 0.2, 0.1), but their result X_hidden = (1.16, 0.42, 0.62)
# is W . I for I = (0.9, 0.1, 0.8): the input of the textbook example they follow.
I = np.array([0.9, 0.1, 0.8])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def forward(W, I):
    """The outputs of a layer: sigmoid(W . I)."""
    return sigmoid(np.dot(W, I))


X_hidden = np.dot(W_input_hidden, I)
O_hidden = forward(W_input_hidden, I)
print("X_hidden =", X_hidden)
print("O_hidden =", O_hidden)

# %% [markdown]
# ## 3. Updating the weights
# $\Delta w_{jk} = \alpha \cdot E_k \cdot O_k (1 - O_k) \cdot O_j^T$, for the weights `W`
# from layer $j$ (outputs `O_j`) to layer $k$ (outputs `O_k`, errors `E`).

# %%
def update_weights(W, alpha, E, O_k, O_j):
    """The new weights W + alpha * (E * O_k * (1 - O_k)) O_j^T (an outer product)."""
    return W + alpha * np.outer(E * O_k * (1 - O_k), O_j)


W_new = update_weights(W_input_hidden, 0.1, np.array([0.8, 0.5, 0.1]), O_hidden, I)
print(W_new)
