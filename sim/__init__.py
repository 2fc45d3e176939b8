"""pdsim: simulate progressive-delivery policies before production does."""
