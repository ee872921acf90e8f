# Rules of the scores stage.
