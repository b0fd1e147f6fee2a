"""Conformance runs: a setup form and a provider's customer templates brought up in a real
lab, checked, and reported as a verdict CI can gate on."""
