"""Who answers queries: the simulated oracle, the labelling desk, the terminal labeller."""
