"""The capability space (paper §3): score tables (`scores`), imputation of missing benchmark scores
(`impute`), the principal capability measures (`pca`), the fitted space that maps any model's scores
to PCs (`space`) and the per-family PC-vs-log10-compute laws (`family_laws`)."""
