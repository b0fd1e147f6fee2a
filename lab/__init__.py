"""vpnlab: site-to-site IPsec VPN labs with real strongSwan and FRR."""

__version__ = "0.1.0"
