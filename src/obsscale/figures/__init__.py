"""Figures: each function reads the tables its rule declares and draws them; none fits anything.
`style` holds the shared look and the PNG + PDF + CSV writer."""
