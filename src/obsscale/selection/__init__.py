"""Model-subset selection (paper §5, Table 1, Fig 7): the V-optimality objective (`objective`),
candidate pools (`pool`), the exact family search with its V-optimal and random choices (`search`),
the greedy/exchange heuristic for large pools (`greedy`) and the held-out check of a selection
with the laws stage's fit (`heldout`)."""
