# Rules of the pca stage.
