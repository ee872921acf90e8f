"""What every part of obsscale shares: one error base (`errors`), one registry type (`registry`),
the estimators' base with freezing (`estimator`), the shared statistics (`stats`), atomic file
writes and provenance (`io`)."""
