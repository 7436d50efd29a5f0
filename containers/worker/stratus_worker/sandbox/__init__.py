"""Custom tasks' sandbox: user code runs in a forked, self-confining child of a warm runner process
(see confine for the kernel layers, runner for the child, pool for the warm runners)."""
