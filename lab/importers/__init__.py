"""Importers: what a ticket already holds (AWS's VPN configuration download, a customer's
swanctl.conf or ipsec.conf) read into per-tunnel sides, then laid out as a lab topology
(``layout``). Above ``providers`` (a profile's lab is where the provider side lands),
below the CLI."""
