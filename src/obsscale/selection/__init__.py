"""Model-subset selection (paper §6, Table 1, Fig 7): the V-optimal search over families (`search`)
and its held-out evaluation (`evaluate`)."""
