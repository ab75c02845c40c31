"""Data: containers, sources (Pythia 8 + FastJet, JetNet files), preprocessing, multiplicity."""
