# %% [markdown]
# # Recursion and dynamic programming
#
# From the lecture notes (seed 004, "Recursion"): a function that calls itself on a smaller
# instance of the same problem. Write the factorial, the naive Fibonacci, and the memoized
# (dynamic programming) Fibonacci that remembers what it has computed.
#
# Fill in every `___`. Keep the names `fac`, `fib`, `mfib` and `memo`: the grader calls the
# functions and counts the calls `mfib` makes.

# %%
n = 5
m = 1
for i in range(n):
    m = m*(i+1)

print(m)

# %% [markdown]
# ## Factorial, recursive
# $n! = n \cdot (n-1) \cdots 2 \cdot 1$

# %%
def fac(n):
    if n == 1:
        return 1
    else:
        return n*fac(n-1)

# recursive
fac(5)

# %% [markdown]
# ## Fibonacci numbers
# $F_1 = F_2 = 1$, $F_n = F_{n-1} + F_{n-2}$.

# %%
# naive Fibonacci
# write a function called fib
def fib(n):
    if n <= 2:
        return 1
    else:
        return fib(n-1) + fib(n-2)

fib(10)

# %% [markdown]
# ## Memoized DP Fibonacci
# `memo[n-1]` keeps $F_n$ once computed (0 means "not yet"): each value is computed once.

# %%
import numpy as np

def mfib(n):
    global memo
    if memo[n-1] != 0:
        return memo[n-1]
    elif n <= 2:
        memo[n-1] = 1
        return memo[n-1]
    else:
        memo[n-1] = mfib(n-1) + mfib(n-2)
        return memo[n-1]

n = 10
memo = np.zeros(n)
mfib(n)

# %%
n = 30
# %timeit fib(30)

memo = np.zeros(n)
# %timeit mfib(30)
