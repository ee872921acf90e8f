"""What every part of obsscale shares: one error base (`errors`), one registry type (`registry`),
atomic file writes and provenance (`io`), and the shared statistics (`stats`)."""
